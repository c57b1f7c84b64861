import torch

# The tests train tiny networks: one thread is faster than several, and far faster
# than two processes fighting over two cores.
torch.set_num_threads(1)
