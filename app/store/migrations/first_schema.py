"""The tables as they were when LayerLab moved to Alembic migrations (revision 0001), frozen here.

Later revisions change the database with their own operations; this copy never changes. It is the first
revision's schema, and the schema a database made before migrations is brought to before it is stamped
with that revision (`app.store.migrate`).
"""

from __future__ import annotations

import sqlalchemy as sa


def first_schema() -> sa.MetaData:
    metadata = sa.MetaData()
    workshops = sa.Table('workshops', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('join_code', sa.String(length=16), nullable=False),
        sa.Column('datasets_json', sa.Text(), nullable=False),
        sa.Column('limits_json', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_workshops_join_code', workshops.c['join_code'], unique=True)
    workspaces = sa.Table('workspaces', metadata,
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_workspaces_token_hash', workspaces.c['token_hash'], unique=True)
    datasets = sa.Table('datasets', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('workspace_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('spec_json', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('folder', sa.String(length=400), nullable=False),
        sa.Column('meta_json', sa.Text(), nullable=True),
        sa.Column('shared_workshop_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_datasets_shared_workshop_id', datasets.c['shared_workshop_id'], unique=False)
    sa.Index('ix_datasets_workspace_id', datasets.c['workspace_id'], unique=False)
    models = sa.Table('models', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('workspace_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('graph_json', sa.Text(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_models_workspace_id', models.c['workspace_id'], unique=False)
    participants = sa.Table('participants', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('workshop_id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.String(length=64), nullable=False),
        sa.Column('display_name', sa.String(length=40), nullable=False),
        sa.Column('name_key', sa.String(length=40), nullable=False),
        sa.Column('pin_hash', sa.String(length=200), nullable=False),
        sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['workshop_id'], ['workshops.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('workshop_id', 'name_key'),
        sa.UniqueConstraint('workspace_id')
    )
    sa.Index('ix_participants_workshop_id', participants.c['workshop_id'], unique=False)
    sessions = sa.Table('sessions', metadata,
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('workspace_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('secret_hash')
    )
    sa.Index('ix_sessions_expires_at', sessions.c['expires_at'], unique=False)
    sa.Index('ix_sessions_workspace_id', sessions.c['workspace_id'], unique=False)
    workshop_examples = sa.Table('workshop_examples', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('workshop_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('author', sa.String(length=40), nullable=False),
        sa.Column('graph_json', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['workshop_id'], ['workshops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_workshop_examples_workshop_id', workshop_examples.c['workshop_id'], unique=False)
    challenges = sa.Table('challenges', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('workshop_id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=80), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=True),
        sa.Column('hidden_folder', sa.String(length=400), nullable=False),
        sa.Column('metric', sa.String(length=16), nullable=False),
        sa.Column('budget_json', sa.Text(), nullable=False),
        sa.Column('target', sa.Double(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['workshop_id'], ['workshops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_challenges_workshop_id', challenges.c['workshop_id'], unique=False)
    graph_history = sa.Table('graph_history', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=False),
        sa.Column('graph_json', sa.Text(), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['model_id'], ['models.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_graph_history_model_id', graph_history.c['model_id'], unique=False)
    model_datasets = sa.Table('model_datasets', metadata,
        sa.Column('model_id', sa.Integer(), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['model_id'], ['models.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('model_id')
    )
    sa.Index('ix_model_datasets_dataset_id', model_datasets.c['dataset_id'], unique=False)
    runs = sa.Table('runs', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('workspace_id', sa.String(length=64), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=True),
        sa.Column('model_name', sa.String(length=64), nullable=False),
        sa.Column('graph_json', sa.Text(), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=True),
        sa.Column('dataset_name', sa.String(length=64), nullable=False),
        sa.Column('dataset_folder', sa.String(length=400), nullable=False),
        sa.Column('config_json', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('epochs_done', sa.Integer(), nullable=False),
        sa.Column('resume', sa.Boolean(), nullable=False),
        sa.Column('evaluation_json', sa.Text(), nullable=True),
        sa.Column('name', sa.String(length=80), nullable=True),
        sa.Column('notes', sa.Text(), nullable=True),
        sa.Column('params', sa.Integer(), nullable=True),
        sa.Column('parent_run_id', sa.Integer(), nullable=True),
        sa.Column('test_scores_json', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['model_id'], ['models.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_runs_state', runs.c['state'], unique=False)
    sa.Index('ix_runs_workspace_id', runs.c['workspace_id'], unique=False)
    searches = sa.Table('searches', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('workspace_id', sa.String(length=64), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=True),
        sa.Column('model_name', sa.String(length=64), nullable=False),
        sa.Column('graph_json', sa.Text(), nullable=False),
        sa.Column('config_json', sa.Text(), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=True),
        sa.Column('spec_json', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['model_id'], ['models.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_searches_state', searches.c['state'], unique=False)
    sa.Index('ix_searches_workspace_id', searches.c['workspace_id'], unique=False)
    challenge_submissions = sa.Table('challenge_submissions', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('challenge_id', sa.Integer(), nullable=False),
        sa.Column('participant_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('model_name', sa.String(length=64), nullable=False),
        sa.Column('graph_json', sa.Text(), nullable=False),
        sa.Column('params', sa.Integer(), nullable=False),
        sa.Column('epochs', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('score', sa.Double(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_challenge_submissions_challenge_id', challenge_submissions.c['challenge_id'], unique=False)
    sa.Index('ix_challenge_submissions_participant_id', challenge_submissions.c['participant_id'], unique=False)
    run_events = sa.Table('run_events', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('data_json', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_run_events_run_id', run_events.c['run_id'], unique=False)
    search_trials = sa.Table('search_trials', metadata,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('search_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('params_json', sa.Text(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('value', sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['search_id'], ['searches.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_search_trials_run_id', search_trials.c['run_id'], unique=False)
    sa.Index('ix_search_trials_search_id', search_trials.c['search_id'], unique=False)
    return metadata
