package io.colossal4j.train;

import io.colossal4j.data.DataException;
import io.colossal4j.data.Mnist;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Obtains Fashion-MNIST the way the machine allows: when its files are missing from Debian's location and this
 * process may install packages (root with apt-get), it installs Debian's {@code dataset-fashion-mnist}, saying
 * so; otherwise nothing happens here and the loader's error says exactly how to get the files.
 */
final class FashionMnistInstall {
  private FashionMnistInstall() {}

  static void installIfMissing(java.nio.file.Path dir, PrintStream log) {
    if (!dir.equals(Mnist.FASHION_DEBIAN_DIR) || Files.isDirectory(dir)) return;
    boolean root = "root".equals(System.getProperty("user.name"));
    boolean apt = Files.isExecutable(Path.of("/usr/bin/apt-get"));
    if (!root || !apt) return; // the loader's error then says how to get the files
    log.println("colossal: Fashion-MNIST is not in " + Mnist.FASHION_DEBIAN_DIR + "; installing Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist) ...");
    run(List.of("apt-get", "install", "-y", "-q", "dataset-fashion-mnist"), log);
    if (!Files.isDirectory(Mnist.FASHION_DEBIAN_DIR)) {
      log.println("colossal: not found in the package lists; running apt-get update first ...");
      run(List.of("apt-get", "update", "-q"), log);
      run(List.of("apt-get", "install", "-y", "-q", "dataset-fashion-mnist"), log);
    }
    if (!Files.isDirectory(Mnist.FASHION_DEBIAN_DIR))
      throw new DataException("installing dataset-fashion-mnist did not create " + Mnist.FASHION_DEBIAN_DIR
          + "; install it by hand (apt-get install dataset-fashion-mnist) or use --set data.name=synthetic");
  }

  private static void run(List<String> cmd, PrintStream log) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes());
      int rc = p.waitFor();
      if (rc != 0) log.println("colossal: `" + String.join(" ", cmd) + "` exited with " + rc + ":\n" + out.lines().skip(Math.max(0, out.lines().count() - 5)).reduce("", (x, y) -> x + "  " + y + "\n"));
    } catch (IOException e) {
      log.println("colossal: could not run " + cmd.get(0) + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
