package io.colossal4j.launch;

import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RendezvousSpec;
import io.colossal4j.distributed.cpu.CpuDistributed;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * How a rank learns its place in the job from its environment: the only code that reads environment
 * variables for the distributed runtime. Recognised, in this order:
 * <ol>
 *   <li>torchrun convention (our launcher, torchrun, Kubernetes operators): {@code RANK}, {@code WORLD_SIZE},
 *   {@code LOCAL_RANK}, {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT};</li>
 *   <li>SLURM ({@code srun}): {@code SLURM_PROCID}, {@code SLURM_NTASKS}, {@code SLURM_LOCALID},
 *   {@code SLURM_NTASKS_PER_NODE}; master = first host of {@code SLURM_JOB_NODELIST}, port {@code MASTER_PORT}
 *   or 20000 + job id mod 20000;</li>
 *   <li>Open MPI ({@code mpirun}): {@code OMPI_COMM_WORLD_RANK}, {@code _SIZE}, {@code _LOCAL_RANK},
 *   {@code _LOCAL_SIZE}; {@code MASTER_ADDR} must be exported ({@code mpirun -x MASTER_ADDR=...}).</li>
 * </ol>
 * Always: {@code C4J_RDZV_TOKEN} (the job's secret, the same on every rank), optionally {@code C4J_JOB_ID},
 * {@code C4J_NODE_ADDR} (the address peers reach this rank at), {@code C4J_COLLECTIVE_TIMEOUT} (seconds,
 * default 600) and {@code C4J_CONNECT_TIMEOUT} (seconds, default 120).
 */
public final class EnvRendezvous {
  private EnvRendezvous() {}

  static final int DEFAULT_PORT = 29500;
  public static final String TOKEN = "C4J_RDZV_TOKEN";
  public static final String JOB_ID = "C4J_JOB_ID";
  public static final String NODE_ADDR = "C4J_NODE_ADDR";
  public static final String TIMEOUT = "C4J_COLLECTIVE_TIMEOUT";
  public static final String LAUNCHER_PID = "C4J_LAUNCHER_PID";

  /** The rank's spec, or empty when nothing says this process is part of a multi-rank job. */
  public static Optional<RendezvousSpec> spec(Map<String, String> env) {
    Source src;
    if (env.containsKey("RANK") || env.containsKey("WORLD_SIZE")) src = torchrun(env);
    else if (env.containsKey("SLURM_PROCID") && env.containsKey("SLURM_NTASKS")) src = slurm(env);
    else if (env.containsKey("OMPI_COMM_WORLD_RANK")) src = openMpi(env);
    else return Optional.empty();
    String token = env.get(TOKEN);
    if (token == null || token.isEmpty())
      throw new IllegalArgumentException(src.name + " variables say this is rank " + src.rank + " of " + src.world + ", but " + TOKEN
          + " is not set; give every rank the same secret (colossal run does this itself)");
    String jobId = env.getOrDefault(JOB_ID, env.getOrDefault("SLURM_JOB_ID", Integer.toHexString(token.hashCode())));
    return Optional.of(new RendezvousSpec(src.rank, src.world, src.localRank, src.localWorld, src.master, src.port,
        env.get(NODE_ADDR), token.getBytes(StandardCharsets.UTF_8), jobId.replaceAll("[^A-Za-z0-9_.-]", "_"),
        Duration.ofSeconds(intVar(env, TIMEOUT, 600, 1, Integer.MAX_VALUE)),
        Duration.ofSeconds(intVar(env, "C4J_CONNECT_TIMEOUT", 120, 1, Integer.MAX_VALUE))));
  }

  private record Source(String name, int rank, int world, int localRank, int localWorld, String master, int port) {}

  private static Source torchrun(Map<String, String> env) {
    int world = intVar(env, "WORLD_SIZE", -1, 1, 1 << 20);
    int rank = intVar(env, "RANK", -1, 0, world - 1);
    int localWorld = intVar(env, "LOCAL_WORLD_SIZE", world, 1, world);
    int localRank = intVar(env, "LOCAL_RANK", rank % localWorld, 0, localWorld - 1);
    return new Source("torchrun-style", rank, world, localRank, localWorld, required(env, "MASTER_ADDR", "torchrun-style"),
        intVar(env, "MASTER_PORT", DEFAULT_PORT, 1, 65535));
  }

  private static Source slurm(Map<String, String> env) {
    int world = intVar(env, "SLURM_NTASKS", -1, 1, 1 << 20);
    int rank = intVar(env, "SLURM_PROCID", -1, 0, world - 1);
    String perNode = env.getOrDefault("SLURM_NTASKS_PER_NODE", env.getOrDefault("SLURM_TASKS_PER_NODE", "1")).split("[(,]")[0];
    int localWorld = parse("SLURM_NTASKS_PER_NODE", perNode, 1, world);
    int localRank = intVar(env, "SLURM_LOCALID", 0, 0, localWorld - 1);
    String master = env.containsKey("MASTER_ADDR") ? env.get("MASTER_ADDR") : NodeList.firstHost(required(env, "SLURM_JOB_NODELIST", "SLURM"));
    int port = env.containsKey("MASTER_PORT") ? intVar(env, "MASTER_PORT", -1, 1, 65535)
        : 20000 + (int) (Long.parseLong(env.getOrDefault("SLURM_JOB_ID", "0").replaceAll("\\D", "0")) % 20000);
    return new Source("SLURM", rank, world, localRank, localWorld, master, port);
  }

  private static Source openMpi(Map<String, String> env) {
    int world = intVar(env, "OMPI_COMM_WORLD_SIZE", -1, 1, 1 << 20);
    int rank = intVar(env, "OMPI_COMM_WORLD_RANK", -1, 0, world - 1);
    int localWorld = intVar(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1, 1, world);
    int localRank = intVar(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0, 0, localWorld - 1);
    String master = required(env, "MASTER_ADDR", "Open MPI (export it: mpirun -x MASTER_ADDR=<host of rank 0>)");
    return new Source("Open MPI", rank, world, localRank, localWorld, master, intVar(env, "MASTER_PORT", DEFAULT_PORT, 1, 65535));
  }

  private static String required(Map<String, String> env, String name, String source) {
    String v = env.get(name);
    if (v == null || v.isBlank()) throw new IllegalArgumentException(name + " is not set (needed by the " + source + " launch mode)");
    return v.trim();
  }

  /** An integer variable within [min, max]; {@code dflt} when absent (-1: required). */
  private static int intVar(Map<String, String> env, String name, int dflt, int min, int max) {
    String v = env.get(name);
    if (v == null || v.isBlank()) {
      if (dflt == -1) throw new IllegalArgumentException(name + " is not set");
      return dflt;
    }
    return parse(name, v.trim(), min, max);
  }

  private static int parse(String name, String v, int min, int max) {
    int x;
    try {
      x = Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "='" + v + "' is not an integer");
    }
    if (x < min || x > max) throw new IllegalArgumentException(name + "=" + x + " is out of range; valid: " + min + ".." + max);
    return x;
  }

  /**
   * Joins the job described by this process's environment and returns the world group, or empty for a
   * single-process run. A rank started by {@code colossal run} also exits when its launcher disappears
   * (killed with -9), so no rank outlives the launcher.
   */
  public static Optional<ProcessGroup> join(PrintStream log) { return join(log, s -> CpuDistributed.connect(s, log)); }

  /**
   * Like {@link #join(PrintStream)}, with the process group made by {@code connect} from this rank's spec (the
   * NCCL group for GPU jobs).
   */
  public static Optional<ProcessGroup> join(PrintStream log, java.util.function.Function<RendezvousSpec, ProcessGroup> connect) {
    Map<String, String> env = System.getenv();
    Optional<RendezvousSpec> spec = spec(env);
    if (spec.isEmpty()) return Optional.empty();
    String launcher = env.get(LAUNCHER_PID);
    if (launcher != null) watchLauncher(Long.parseLong(launcher), spec.get().rank(), log);
    return Optional.of(connect.apply(spec.get()));
  }

  private static void watchLauncher(long pid, int rank, PrintStream log) {
    ProcessHandle.of(pid).ifPresentOrElse(
        h -> h.onExit().thenRun(() -> {
          log.println("rank " + rank + ": the launcher (pid " + pid + ") is gone; exiting");
          Runtime.getRuntime().halt(143);
        }),
        () -> {
          log.println("rank " + rank + ": the launcher (pid " + pid + ") is gone; exiting");
          Runtime.getRuntime().halt(143);
        });
  }
}
