package io.colossal4j.cli;

import io.colossal4j.launch.HostEnvironment;
import io.colossal4j.train.TrainJob;
import io.colossal4j.train.config.Configs;
import io.colossal4j.train.config.RunConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code colossal train [config.yaml] [--set key=value ...] [--print-config]}: the default job when no config
 * is given ({@code examples/vit-fashion-mnist.yaml}).
 */
final class TrainCommand implements Main.Command {
  static final Path DEFAULT_CONFIG = Path.of("examples/vit-fashion-mnist.yaml");

  @Override public String summary() { return "train from a YAML config (default: a ViT on Fashion-MNIST)"; }

  @Override public int run(String[] args) {
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
    RunConfig config = Configs.load(configPath, Configs.setsFrom(rest));
    if (print) {
      System.out.print(Configs.toYaml(config));
      return 0;
    }
    try (TrainJob job = new TrainJob(config, HostEnvironment.current(), HostEnvironment.interactive(), System.out)) {
      job.run();
    }
    return 0;
  }
}
