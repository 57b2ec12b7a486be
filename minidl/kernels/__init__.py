"""Array kernels: the raw numerical work behind the functions, without autograd.

Everything here takes and returns plain arrays (numpy or cupy) and is written
once against the array module ``xp``; on CuPy the hottest few hand over to one
fused CUDA kernel each (:mod:`minidl.kernels.cuda`). The functions in
:mod:`minidl.functional` wrap these kernels with their backward passes.
"""
