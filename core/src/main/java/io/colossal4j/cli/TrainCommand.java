package io.colossal4j.cli;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.nccl.NcclDistributed;
import io.colossal4j.tensor.Device;
import io.colossal4j.train.config.DeviceConfig;
import io.colossal4j.launch.EnvRendezvous;
import io.colossal4j.launch.HostEnvironment;
import io.colossal4j.launch.LaunchOptions;
import io.colossal4j.launch.Launcher;
import io.colossal4j.train.TrainJob;
import io.colossal4j.train.config.Configs;
import io.colossal4j.train.config.RunConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code colossal train [config.yaml] [--set key=value ...] [--print-config]}: the default job when no config
 * is given ({@code examples/vit-fashion-mnist.yaml}). Started by hand, it launches the ranks its config's layout
 * needs on this machine (data × tensor × pipeline, when the data size is given); started as a rank by
 * {@code colossal run}, SLURM or Open MPI, it joins that job.
 */
final class TrainCommand implements Main.Command {
  static final Path DEFAULT_CONFIG = Path.of("examples/vit-fashion-mnist.yaml");

  @Override public String summary() { return "train from a YAML config (default: a ViT on Fashion-MNIST)"; }

  @Override public int run(String[] args) throws Exception {
    Path configPath = null;
    boolean print = false;
    List<String> rest = new ArrayList<>();
    for (String a : args) {
      if (a.equals("--print-config")) print = true;
      else if (configPath == null && !a.startsWith("--") && (rest.isEmpty() || !rest.getLast().equals("--set"))) configPath = Path.of(a);
      else rest.add(a);
    }
    if (configPath == null) configPath = DEFAULT_CONFIG;
    if (!Files.isRegularFile(configPath)) {
      System.err.println("colossal train: config file " + configPath.toAbsolutePath() + " not found");
      return 2;
    }
    RunConfig config = Configs.load(configPath, Configs.setsFrom(rest));  // rejected here, before any rank starts
    if (print) {
      System.out.print(Configs.toYaml(config));
      return 0;
    }
    boolean isRank = EnvRendezvous.spec(HostEnvironment.current()).isPresent();
    if (!isRank) TrainJob.obtainData(config, System.out);   // once, before any rank starts
    int wanted = Math.max(1, config.parallel().data()) * config.parallel().tensor().size() * config.parallel().pipeline();
    if (!isRank && wanted > 1) return launch(wanted, configPath, rest);
    if (isRank && config.device().kind() == DeviceConfig.Kind.CUDA) return trainOnGpu(config);
    Optional<ProcessGroup> world = EnvRendezvous.join(System.err);
    try (TrainJob job = new TrainJob(config, world, HostEnvironment.current(), HostEnvironment.interactive(), System.out)) {
      job.run();
    } finally {
      world.ifPresent(ProcessGroup::close);
    }
    return 0;
  }

  /**
   * A rank of a GPU job: its GPU is cuda:LOCAL_RANK (checked against the GPUs this host has), its process
   * group NCCL over the rendezvous store. The group closes before the GPU it runs on.
   */
  private static int trainOnGpu(RunConfig config) {
    var env = HostEnvironment.current();
    var spec = EnvRendezvous.spec(env).orElseThrow();
    var options = TrainJob.cudaOptions(config.device(), env);
    try (CudaBackend gpu = CudaBackend.open(Device.cuda(NcclDistributed.device(spec, CudaBackend.deviceCount(options))), options)) {
      Optional<ProcessGroup> world = EnvRendezvous.join(System.err, s -> NcclDistributed.connect(s, gpu, System.err));
      try (TrainJob job = new TrainJob(config, world, Optional.of(gpu), env, HostEnvironment.interactive(), System.out)) {
        job.run();
      } finally {
        world.ifPresent(ProcessGroup::close);
      }
    }
    return 0;
  }

  /** Runs this same command as {@code ranks} processes on this machine, as {@code colossal run} would. */
  private static int launch(int ranks, Path config, List<String> rest) throws Exception {
    System.out.println("colossal train: the config's layout needs " + ranks + " processes; launching them on this machine "
        + "(the same as: colossal run --nproc-per-node " + ranks + " " + config + (rest.isEmpty() ? "" : " " + String.join(" ", rest)) + ")");
    List<String> argv = new ArrayList<>(List.of("--nproc-per-node", Integer.toString(ranks), config.toString()));
    argv.addAll(rest);
    return new Launcher(LaunchOptions.parse(argv.toArray(String[]::new)), System.out, null).run();
  }
}
