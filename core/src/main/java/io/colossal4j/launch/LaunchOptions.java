package io.colossal4j.launch;

import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * What {@code colossal run} was asked to do.
 *
 * @param masterPort 0: pick a free port (single node only)
 * @param nodeAddr the address this node's ranks listen on (null: the one that reaches the master)
 * @param command the CLI subcommand each rank runs ({@code train} by default), with {@code args}
 * @param timeoutSeconds per-collective timeout given to the ranks (0: their default, 10 minutes)
 * @param graceSeconds after the first rank fails, how long the others get to report and exit before they are stopped
 */
public record LaunchOptions(int nprocPerNode, int nnodes, int nodeRank, String masterAddr, int masterPort, String nodeAddr,
    String command, List<String> args, Path logDir, int timeoutSeconds, int graceSeconds) {
  public LaunchOptions {
    if (nprocPerNode < 1 || nprocPerNode > 1024) throw new IllegalArgumentException("--nproc-per-node " + nprocPerNode + " is out of range; valid: 1..1024");
    if (nnodes < 1) throw new IllegalArgumentException("--nnodes " + nnodes + " is out of range; valid: >= 1");
    if (nodeRank < 0 || nodeRank >= nnodes) throw new IllegalArgumentException("--node-rank " + nodeRank + " is out of range for --nnodes " + nnodes + "; valid: 0.." + (nnodes - 1));
    if (masterPort < 0 || masterPort > 65535) throw new IllegalArgumentException("--master-port " + masterPort + " is out of range; valid: 1..65535");
    if (masterPort == 0 && nnodes > 1) throw new IllegalArgumentException("--master-port is required with --nnodes > 1 (every node's launcher must use the same one)");
    if (timeoutSeconds < 0) throw new IllegalArgumentException("--timeout " + timeoutSeconds + " must be >= 0 seconds");
    args = List.copyOf(args);
  }

  public int worldSize() { return nprocPerNode * nnodes; }

  public static final String USAGE = """
      usage: colossal run --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]
                          [--node-addr A] [--command train] [--log-dir DIR] [--timeout SECONDS] <config.yaml> [--set k=v ...]
        Starts N ranks on this node, each running 'colossal <command> <args>' with RANK, LOCAL_RANK, WORLD_SIZE,
        LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set; prefixes their output with the rank and keeps one log
        per rank in the log folder. Multi-node: run one launcher per node with the same --nnodes, --master-addr,
        --master-port and C4J_RDZV_TOKEN, and its own --node-rank.""";

  /** Parses the launcher's options; the first argument that is not one of them starts the rank command's arguments. */
  public static LaunchOptions parse(String[] argv) {
    int nproc = -1, nnodes = 1, nodeRank = 0, port = -1, timeout = 0, grace = 10;
    String master = "127.0.0.1", nodeAddr = null, command = "train";
    Path logDir = null;
    List<String> rest = new ArrayList<>();
    int i = 0;
    for (; i < argv.length; i++) {
      String a = argv[i], key = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
      if (!key.startsWith("--") || key.equals("--set")) break;
      if (key.equals("--")) { i++; break; }
      String v = a.contains("=") ? a.substring(a.indexOf('=') + 1) : value(argv, ++i, key);
      switch (key.replace('_', '-')) {
        case "--nproc-per-node" -> nproc = integer(key, v);
        case "--nnodes" -> nnodes = integer(key, v);
        case "--node-rank" -> nodeRank = integer(key, v);
        case "--master-addr" -> master = v;
        case "--master-port" -> port = integer(key, v);
        case "--node-addr" -> nodeAddr = v;
        case "--command" -> command = v;
        case "--log-dir" -> logDir = Path.of(v);
        case "--timeout" -> timeout = integer(key, v);
        case "--grace" -> grace = integer(key, v);
        default -> throw new IllegalArgumentException("unknown option " + key + "\n" + USAGE);
      }
    }
    for (; i < argv.length; i++) rest.add(argv[i]);
    if (nproc == -1) throw new IllegalArgumentException("--nproc-per-node is required\n" + USAGE);
    if (port == -1) port = nnodes > 1 ? EnvRendezvous.DEFAULT_PORT : 0;
    if (logDir == null) logDir = Path.of("runs", "launch-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")) + "-node" + nodeRank);
    return new LaunchOptions(nproc, nnodes, nodeRank, master, port, nodeAddr, command, rest, logDir, timeout, grace);
  }

  private static String value(String[] argv, int i, String key) {
    if (i >= argv.length) throw new IllegalArgumentException(key + " needs a value\n" + USAGE);
    return argv[i];
  }

  private static int integer(String key, String v) {
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(key + " '" + v + "' is not an integer");
    }
  }
}
