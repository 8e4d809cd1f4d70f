"""Kernel initializers offered in the editor, each with a note for learners."""

INITIALIZERS: dict[str, str] = {
    "glorot_uniform": "Keras' default: uniform values scaled by the number of inputs and "
                      "outputs; a good start for sigmoid, tanh and softmax.",
    "glorot_normal": "Like glorot_uniform, drawn from a narrow bell curve instead.",
    "he_uniform": "Scaled for relu-like activations, so signals keep their size through deep relu stacks.",
    "he_normal": "Like he_uniform, drawn from a bell curve: the classic choice for relu convnets.",
    "lecun_uniform": "Scaled by the number of inputs only.",
    "lecun_normal": "Scaled by the number of inputs, from a bell curve; pair it with selu.",
    "random_normal": "Small values from a bell curve with standard deviation 0.05, "
                     "ignoring the layer's size: can make deep networks slow to learn.",
    "random_uniform": "Small values between -0.05 and 0.05, ignoring the layer's size.",
    "truncated_normal": "A bell curve with the extreme values redrawn.",
    "orthogonal": "A random rotation matrix: keeps signals from growing or shrinking, "
                  "popular for recurrent layers.",
    "zeros": "All weights start at 0: every neuron learns the same thing, so the network "
             "cannot learn. Try it once to see why random starts matter.",
    "ones": "All weights start at 1: the same symmetry problem as zeros.",
}
