package io.colossal4j.tensor;

import java.util.List;

/** The autograd node that produced a tensor (implemented by {@code autograd.Node}). */
public interface GradFn {
  /** The op's name, for messages and graph dumps. */
  String name();

  /** The op's tensor inputs, in order; entries may be tensors that do not require grad. */
  List<Tensor> inputs();
}
