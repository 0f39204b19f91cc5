package io.colossal4j.backend.cpu;

import io.colossal4j.backend.Conv2dSpec;
import io.colossal4j.backend.Pool2dSpec;
import io.colossal4j.tensor.Tensor;

/** Reference loops for convolution and pooling (NCHW). */
final class ScalarConv {
  private ScalarConv() {}

  static void conv2d(Tensor x, Tensor w, Conv2dSpec spec, Tensor out) { throw new UnsupportedOperationException("conv2d: not implemented yet"); }

  static void conv2dBackwardInput(Tensor gy, Tensor w, Conv2dSpec spec, Tensor gx) { throw new UnsupportedOperationException("conv2dBackwardInput: not implemented yet"); }

  static void conv2dBackwardWeight(Tensor x, Tensor gy, Conv2dSpec spec, Tensor gw) { throw new UnsupportedOperationException("conv2dBackwardWeight: not implemented yet"); }

  static void maxPool2d(Tensor x, Pool2dSpec spec, Tensor out, Tensor indices) { throw new UnsupportedOperationException("maxPool2d: not implemented yet"); }

  static void maxPool2dBackward(Tensor gy, Tensor indices, Tensor gx) { throw new UnsupportedOperationException("maxPool2dBackward: not implemented yet"); }

  static void avgPool2d(Tensor x, Pool2dSpec spec, Tensor out) { throw new UnsupportedOperationException("avgPool2d: not implemented yet"); }

  static void avgPool2dBackward(Tensor gy, Pool2dSpec spec, Tensor gx) { throw new UnsupportedOperationException("avgPool2dBackward: not implemented yet"); }
}
