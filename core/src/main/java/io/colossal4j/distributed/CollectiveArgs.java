package io.colossal4j.distributed;

import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;

/**
 * The argument checks every process group makes before a collective, with one wording for all of them: each
 * error names the operation, the group, this rank, the offending value and what would be valid. A group adds
 * its own checks (the device its tensors must live on) after these.
 */
public final class CollectiveArgs {
  private CollectiveArgs() {}

  /** "all_reduce on group tp0 (rank 1 of 2): why". */
  public static IllegalArgumentException bad(ProcessGroup g, String op, String why) {
    return new IllegalArgumentException(op + " on group " + g.name() + " (rank " + g.rank() + " of " + g.size() + "): " + why);
  }

  /** Tensors of one collective: not bool, contiguous, all of the first one's dtype; AVG only on floating types. */
  public static void checkTensors(ProcessGroup g, String op, Reduction red, Tensor... ts) {
    for (Tensor t : ts) {
      if (t.dtype() == DType.BOOL) throw bad(g, op, "dtype bool is not supported; use i32, i64, f16, bf16, f32 or f64");
      if (!t.isContiguous()) throw bad(g, op, "tensor " + t.shape() + " with strides " + Arrays.toString(t.strides()) + " is not contiguous; pass a contiguous copy");
      if (t.dtype() != ts[0].dtype()) throw bad(g, op, "input and output dtypes differ (" + ts[0].dtype() + " vs " + t.dtype() + ")");
    }
    if (red == Reduction.AVG && !ts[0].dtype().isFloating())
      throw bad(g, op, "AVG needs a floating tensor, got " + ts[0].dtype() + "; use SUM and divide");
  }

  /** A rank of this group given as {@code what} (root, source, ...). */
  public static void checkRank(ProcessGroup g, String op, String what, int r) {
    if (r < 0 || r >= g.size()) throw bad(g, op, what + " " + r + " is out of range; valid: 0.." + (g.size() - 1));
  }

  /** The other end of a point-to-point operation: a rank of this group other than this one. */
  public static void checkPeer(ProcessGroup g, String op, int peer) {
    checkRank(g, op, "peer", peer);
    if (peer == g.rank()) throw bad(g, op, "peer " + peer + " is this rank itself");
  }

  /**
   * The world ranks of subgroup {@code label} of g, given by their ranks in g ({@code members} maps a rank of g
   * to its world rank); rejects repeated or out-of-range ranks and a subgroup without this rank.
   */
  public static List<Integer> subgroupWorldRanks(ProcessGroup g, List<Integer> members, String label, List<Integer> groupRanks) {
    var seen = new HashSet<Integer>();
    List<Integer> worldRanks = new ArrayList<>();
    for (int r : groupRanks) {
      if (r < 0 || r >= g.size() || !seen.add(r))
        throw new IllegalArgumentException("subgroup '" + label + "' of " + g.name() + ": members " + groupRanks + " must be distinct ranks in 0.." + (g.size() - 1));
      worldRanks.add(members.get(r));
    }
    if (!worldRanks.contains(members.get(g.rank())))
      throw new IllegalArgumentException("subgroup '" + label + "' " + groupRanks + " of " + g.name() + " does not contain this rank (" + g.rank() + ")");
    return worldRanks;
  }
}
