package io.colossal4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.colossal4j.tensor.Shape;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The file-backed data sets: small files written here, bad files rejected by size and magic, and the real Fashion-MNIST. */
class DatasetFilesTest {
  @TempDir Path tmp;

  static byte[] idx(int rank, int[] dims, byte[] data) {
    ByteBuffer b = ByteBuffer.allocate(4 + 4 * rank + data.length);
    b.putInt(0x800 | rank);
    for (int d : dims) b.putInt(d);
    return b.put(data).array();
  }

  void writeMnist(Path dir, boolean gzip) throws IOException {
    byte[] pixels = new byte[3 * 2 * 2];
    for (int i = 0; i < pixels.length; i++) pixels[i] = (byte) (i * 20);
    pixels[11] = (byte) 255;
    write(dir.resolve("t10k-images-idx3-ubyte" + (gzip ? ".gz" : "")), idx(3, new int[] {3, 2, 2}, pixels), gzip);
    write(dir.resolve("t10k-labels-idx1-ubyte" + (gzip ? ".gz" : "")), idx(1, new int[] {3}, new byte[] {9, 0, 4}), gzip);
  }

  static void write(Path p, byte[] bytes, boolean gzip) throws IOException {
    Files.createDirectories(p.getParent());
    try (OutputStream o = gzip ? new GZIPOutputStream(Files.newOutputStream(p)) : Files.newOutputStream(p)) {
      o.write(bytes);
    }
  }

  @Test void idxPlainAndGzip() throws IOException {
    for (boolean gz : new boolean[] {false, true}) {
      Path dir = tmp.resolve("m" + gz);
      writeMnist(dir, gz);
      Dataset d = Mnist.fashion(dir, Split.TEST);
      assertEquals(3, d.size());
      assertEquals(Shape.of(1, 2, 2), d.sampleShape());
      assertEquals(4, d.get(2).label());
      assertArrayEquals(new float[] {160 / 255f, 180 / 255f, 200 / 255f, 1f}, d.get(2).x());
    }
  }

  @Test void badIdxFilesAreDetectedBySizeAndMagic() throws IOException {
    Path dir = tmp.resolve("bad");
    writeMnist(dir, false);
    Path images = dir.resolve("t10k-images-idx3-ubyte");
    byte[] good = Files.readAllBytes(images);
    Files.write(images, java.util.Arrays.copyOf(good, good.length - 5));
    var e = assertThrows(DataException.class, () -> Mnist.fashion(dir, Split.TEST));
    assertTrue(e.getMessage().contains("truncated") && e.getMessage().contains("promises [3, 2, 2] = 28 bytes, the file holds 23"), e.getMessage());
    byte[] wrong = good.clone();
    wrong[3] = 1;
    Files.write(images, wrong);
    e = assertThrows(DataException.class, () -> Mnist.fashion(dir, Split.TEST));
    assertTrue(e.getMessage().contains("magic number 0x00000801, expected 0x00000803"), e.getMessage());
    Path gz = tmp.resolve("gz");
    writeMnist(gz, true);
    Path gzImages = gz.resolve("t10k-images-idx3-ubyte.gz");
    byte[] z = Files.readAllBytes(gzImages);
    Files.write(gzImages, java.util.Arrays.copyOf(z, z.length / 2));
    e = assertThrows(DataException.class, () -> Mnist.fashion(gz, Split.TEST));
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
  }

  @Test void missingFilesSayWhereAndHow() {
    var e = assertThrows(DataException.class, () -> Mnist.fashion(tmp.resolve("nothing"), Split.TRAIN));
    String m = e.getMessage();
    assertTrue(m.contains(tmp.resolve("nothing").resolve("train-images-idx3-ubyte.gz").toString()), m);
    assertTrue(m.contains("apt-get install dataset-fashion-mnist") && m.contains("--set data.name=synthetic"), m);
    e = assertThrows(DataException.class, () -> Cifar10.load(tmp, Split.TEST));
    assertTrue(e.getMessage().contains("test_batch.bin") && e.getMessage().contains("--set data.name=synthetic"), e.getMessage());
  }

  @Test void cifarBatchFiles() throws IOException {
    Path dir = tmp.resolve("cifar-10-batches-bin");
    byte[] f = new byte[Cifar10.RECORD * Cifar10.RECORDS_PER_FILE];
    for (int r = 0; r < Cifar10.RECORDS_PER_FILE; r++) {
      f[r * Cifar10.RECORD] = (byte) (r % 10);
      f[r * Cifar10.RECORD + 1 + 1024] = (byte) r; // first green pixel
    }
    write(dir.resolve("test_batch.bin"), f, false);
    Dataset d = Cifar10.load(tmp, Split.TEST);
    assertEquals(10000, d.size());
    assertEquals(Shape.of(3, 32, 32), d.sampleShape());
    assertEquals(7, d.get(17).label());
    assertEquals(17 / 255f, d.get(17).x()[1024]);
    f[5 * Cifar10.RECORD] = 10;
    write(dir.resolve("test_batch.bin"), f, false);
    var e = assertThrows(DataException.class, () -> Cifar10.load(tmp, Split.TEST));
    assertTrue(e.getMessage().contains("record 5 has label byte 10"), e.getMessage());
    write(dir.resolve("test_batch.bin"), java.util.Arrays.copyOf(f, 3073 * 9999), false);
    e = assertThrows(DataException.class, () -> Cifar10.load(tmp, Split.TEST));
    assertTrue(e.getMessage().contains("truncated") && e.getMessage().contains("30730000"), e.getMessage());
  }

  @Test void imageFolderReadsPngAndJpeg() throws IOException {
    for (String cls : List.of("b_dog", "a_cat")) Files.createDirectories(tmp.resolve("imgs").resolve(cls));
    BufferedImage red = new BufferedImage(4, 2, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 2; y++) for (int x = 0; x < 4; x++) red.setRGB(x, y, x < 2 ? 0xff0000 : 0x0000ff);
    ImageIO.write(red, "png", tmp.resolve("imgs/a_cat/1.png").toFile());
    BufferedImage grey = new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 8; y++) for (int x = 0; x < 8; x++) grey.setRGB(x, y, 0x808080);
    ImageIO.write(grey, "jpg", tmp.resolve("imgs/b_dog/x.jpg").toFile());
    Files.writeString(tmp.resolve("imgs/b_dog/notes.txt"), "ignored");
    ImageFolder d = new ImageFolder(tmp.resolve("imgs"), 3, 2, 4);
    assertEquals(List.of("a_cat", "b_dog"), d.classes());
    assertEquals(2, d.size());
    Sample cat = d.get(0);
    assertEquals(0, cat.label());
    assertArrayEquals(new float[] {1, 1, 0, 0, 1, 1, 0, 0}, java.util.Arrays.copyOfRange(cat.x(), 0, 8), "red plane");
    assertArrayEquals(new float[] {0, 0, 1, 1, 0, 0, 1, 1}, java.util.Arrays.copyOfRange(cat.x(), 16, 24), "blue plane");
    Sample dog = new ImageFolder(tmp.resolve("imgs"), 1, 2, 4).get(1);
    assertEquals(1, dog.label());
    for (float v : dog.x()) assertEquals(128 / 255f, v, 3 / 255f, "grey survives JPEG and resizing within 3 levels");
    Files.writeString(tmp.resolve("imgs/a_cat/broken.png"), "not a png");
    var e = assertThrows(DataException.class, () -> new ImageFolder(tmp.resolve("imgs"), 3, 2, 4).get(1)); // a_cat/broken.png sorts after a_cat/1.png
    assertTrue(e.getMessage().contains("broken.png"), e.getMessage());
  }

  @Test void realFashionMnist() {
    assumeTrue(Files.isDirectory(Mnist.FASHION_DEBIAN_DIR),
        Mnist.FASHION_DEBIAN_DIR + " is absent (apt-get install dataset-fashion-mnist); skipping the real-data check");
    Dataset test = Mnist.fashion(Mnist.FASHION_DEBIAN_DIR, Split.TEST);
    assertEquals(10000, test.size());
    assertEquals(Shape.of(1, 28, 28), test.sampleShape());
    // The first test images of Fashion-MNIST are an ankle boot (9), a pullover (2) and two trousers (1).
    assertEquals(List.of(9, 2, 1, 1), List.of(test.get(0).label(), test.get(1).label(), test.get(2).label(), test.get(3).label()));
    int[] perClass = new int[10];
    for (int i = 0; i < test.size(); i++) perClass[test.get(i).label()]++;
    for (int c : perClass) assertEquals(1000, c, "the test split has 1000 images per class");
  }
}
