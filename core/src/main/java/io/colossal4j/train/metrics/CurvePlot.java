package io.colossal4j.train.metrics;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A PNG of a run's curves: loss (train per logged step, eval per evaluation) on the left, accuracy on the right,
 * against the optimizer step. Drawn on a {@link BufferedImage} (works headless, no display needed). Lines are
 * drawn without antialiasing so their colours are exact (tests read pixels back); text is antialiased.
 */
public final class CurvePlot {
  private CurvePlot() {}

  static final int WIDTH = 1200, HEIGHT = 480;
  static final Color TRAIN = new Color(31, 119, 180), EVAL = new Color(214, 39, 40);

  /** One named line; {@code x} and {@code y} have equal length; NaN values are skipped. */
  public record Series(String name, Color color, double[] x, double[] y) {}

  /** A panel's data-to-pixel mapping over the rectangle (left, top, width, height). */
  record Frame(int left, int top, int width, int height, double xMin, double xMax, double yMin, double yMax) {
    int px(double x) { return left + (int) Math.round((x - xMin) / (xMax - xMin) * width); }

    int py(double y) { return top + height - (int) Math.round((y - yMin) / (yMax - yMin) * height); }
  }

  public static void write(Path png, History h) {
    List<StepMetrics> steps = h.steps();
    List<EvalMetrics> evals = h.evals();
    double[] sx = steps.stream().mapToDouble(StepMetrics::step).toArray();
    double[] ex = evals.stream().mapToDouble(EvalMetrics::step).toArray();
    List<Series> loss = List.of(new Series("train loss", TRAIN, sx, steps.stream().mapToDouble(StepMetrics::loss).toArray()),
        new Series("eval loss", EVAL, ex, evals.stream().mapToDouble(EvalMetrics::loss).toArray()));
    List<Series> acc = List.of(new Series("train accuracy", TRAIN, sx, steps.stream().mapToDouble(StepMetrics::accuracy).toArray()),
        new Series("eval accuracy", EVAL, ex, evals.stream().mapToDouble(EvalMetrics::accuracy).toArray()));
    write(png, "loss", loss, "accuracy", acc);
  }

  static void write(Path png, String leftTitle, List<Series> left, String rightTitle, List<Series> right) {
    BufferedImage img = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    try {
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, WIDTH, HEIGHT);
      g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
      panel(g, frame(70, left), leftTitle, left);
      panel(g, frame(WIDTH / 2 + 70, right), rightTitle, right);
    } finally {
      g.dispose();
    }
    try {
      Files.createDirectories(png.toAbsolutePath().getParent());
      ImageIO.write(img, "png", png.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the plot " + png + ": " + e.getMessage(), e);
    }
  }

  /** The frame of a panel whose plot area starts at pixel {@code left}, ranged over the finite data. */
  static Frame frame(int left, List<Series> series) {
    double xMin = Double.MAX_VALUE, xMax = -Double.MAX_VALUE, yMin = Double.MAX_VALUE, yMax = -Double.MAX_VALUE;
    for (Series s : series)
      for (int i = 0; i < s.x().length; i++) {
        if (!Double.isFinite(s.y()[i])) continue;
        xMin = Math.min(xMin, s.x()[i]);
        xMax = Math.max(xMax, s.x()[i]);
        yMin = Math.min(yMin, s.y()[i]);
        yMax = Math.max(yMax, s.y()[i]);
      }
    if (xMin > xMax) { xMin = 0; xMax = 1; yMin = 0; yMax = 1; }
    if (xMax == xMin) xMax = xMin + 1;
    double pad = yMax > yMin ? 0.05 * (yMax - yMin) : 0.5;
    return new Frame(left, 40, WIDTH / 2 - 100, HEIGHT - 100, xMin, xMax, yMin - pad, yMax + pad);
  }

  private static void panel(Graphics2D g, Frame f, String title, List<Series> series) {
    g.setColor(new Color(225, 225, 225));
    for (int i = 0; i <= 4; i++) {
      int y = f.top() + i * f.height() / 4, x = f.left() + i * f.width() / 4;
      g.drawLine(f.left(), y, f.left() + f.width(), y);
      g.drawLine(x, f.top(), x, f.top() + f.height());
    }
    g.setColor(Color.BLACK);
    g.drawRect(f.left(), f.top(), f.width(), f.height());
    g.drawString(title, f.left() + f.width() / 2 - g.getFontMetrics().stringWidth(title) / 2, f.top() - 12);
    for (int i = 0; i <= 4; i++) {
      double yv = f.yMax() - i * (f.yMax() - f.yMin()) / 4, xv = f.xMin() + i * (f.xMax() - f.xMin()) / 4;
      String yl = String.format(Locale.ROOT, "%.3g", yv), xl = String.format(Locale.ROOT, "%.0f", xv);
      g.drawString(yl, f.left() - 8 - g.getFontMetrics().stringWidth(yl), f.top() + i * f.height() / 4 + 4);
      g.drawString(xl, f.left() + i * f.width() / 4 - g.getFontMetrics().stringWidth(xl) / 2, f.top() + f.height() + 16);
    }
    g.drawString("step", f.left() + f.width() / 2 - 12, f.top() + f.height() + 34);
    int legendY = f.top() + 16;
    g.setStroke(new BasicStroke(2));
    for (Series s : series) {
      List<int[]> pts = new ArrayList<>();
      for (int i = 0; i < s.x().length; i++) if (Double.isFinite(s.y()[i])) pts.add(new int[] {f.px(s.x()[i]), f.py(s.y()[i])});
      if (pts.isEmpty()) continue;
      g.setColor(s.color());
      for (int i = 1; i < pts.size(); i++) g.drawLine(pts.get(i - 1)[0], pts.get(i - 1)[1], pts.get(i)[0], pts.get(i)[1]);
      for (int[] p : pts) if (pts.size() < 50) g.fillRect(p[0] - 2, p[1] - 2, 5, 5);
      g.fillRect(f.left() + f.width() - 130, legendY - 5, 16, 4);
      g.setColor(Color.BLACK);
      g.drawString(s.name(), f.left() + f.width() - 108, legendY);
      legendY += 16;
    }
  }
}
