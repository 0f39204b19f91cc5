package io.colossal4j.data;

import io.colossal4j.tensor.Shape;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CIFAR-10 in its binary version: {@code data_batch_1.bin} .. {@code data_batch_5.bin} (train) and
 * {@code test_batch.bin} (test), in the given directory or its {@code cifar-10-batches-bin} subdirectory. Each
 * record is 1 label byte and 3072 pixel bytes (R, G, B planes of 32×32); a file holds 10000 records. The format
 * has no magic number, so a file is checked by its size (a whole number of records, 10000 of them) and by every
 * label byte being a class 0..9.
 */
public final class Cifar10 {
  private Cifar10() {}

  static final int RECORD = 1 + 3 * 32 * 32;
  static final int RECORDS_PER_FILE = 10000;

  public static Dataset load(Path dir, Split split) {
    Path root = Files.isDirectory(dir.resolve("cifar-10-batches-bin")) ? dir.resolve("cifar-10-batches-bin") : dir;
    List<String> names = split == Split.TRAIN
        ? List.of("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin")
        : List.of("test_batch.bin");
    List<byte[]> files = new ArrayList<>();
    for (String n : names) files.add(read(root.resolve(n), dir));
    int count = files.size() * RECORDS_PER_FILE;
    byte[] pixels = new byte[count * (RECORD - 1)];
    byte[] labels = new byte[count];
    int k = 0;
    for (byte[] f : files)
      for (int r = 0; r < RECORDS_PER_FILE; r++, k++) {
        labels[k] = f[r * RECORD];
        System.arraycopy(f, r * RECORD + 1, pixels, k * (RECORD - 1), RECORD - 1);
      }
    return new ByteImageDataset("cifar10 " + split.name().toLowerCase(), pixels, labels, Shape.of(3, 32, 32), 10);
  }

  private static byte[] read(Path file, Path dir) {
    if (!Files.isRegularFile(file))
      throw new DataException("data file not found: " + file + " (looked in " + dir + " and " + dir.resolve("cifar-10-batches-bin")
          + "); put the CIFAR-10 binary version (cifar-10-binary.tar.gz, extracted) there, point data.path at it, "
          + "or use --set data.name=synthetic to run without data");
    byte[] b;
    try {
      b = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new DataException("could not read " + file + ": " + e, e);
    }
    long expected = (long) RECORD * RECORDS_PER_FILE;
    if (b.length != expected)
      throw new DataException(file + " is " + (b.length < expected ? "truncated" : "corrupt") + ": " + b.length
          + " bytes, a CIFAR-10 batch file has " + RECORDS_PER_FILE + " records of " + RECORD + " bytes = " + expected);
    for (int r = 0; r < RECORDS_PER_FILE; r++)
      if ((b[r * RECORD] & 0xff) > 9)
        throw new DataException(file + " is corrupt: record " + r + " has label byte " + (b[r * RECORD] & 0xff) + " (valid: 0..9)");
    return b;
  }
}
