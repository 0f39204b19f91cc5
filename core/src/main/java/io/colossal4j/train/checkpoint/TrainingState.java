package io.colossal4j.train.checkpoint;

import io.colossal4j.data.LoaderPosition;
import io.colossal4j.tensor.Rng;
import io.colossal4j.train.json.Json;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The scalar part of a checkpoint (stored as {@code state.json}): optimizer steps taken, the LR schedule's step,
 * the data loader's position, every named random stream and a few named numbers (e.g. the fp16 loss scale,
 * the best eval accuracy). Together with the model and optimizer tensors this is everything a resumed run
 * needs to continue bit for bit.
 *
 * @param model the model's name (e.g. {@code vit_fmnist}); a checkpoint of another model is rejected by name
 */
public record TrainingState(String model, long step, long scheduleStep, LoaderPosition loader,
                            Map<String, Rng.State> rngs, Map<String, Double> scalars) {
  static final int FORMAT = 1;

  public TrainingState {
    if (step < 0 || scheduleStep < 0)
      throw new IllegalArgumentException("step and scheduleStep must be >= 0, got " + step + " and " + scheduleStep);
    rngs = Map.copyOf(rngs);
    scalars = Map.copyOf(scalars);
  }

  String toJson() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("format", FORMAT);
    m.put("model", model);
    m.put("step", step);
    m.put("schedule_step", scheduleStep);
    m.put("loader", Map.of("epoch", loader.epoch(), "batch", loader.batch()));
    Map<String, Object> r = new TreeMap<>();
    rngs.forEach((k, v) -> r.put(k, Map.of("seed", v.seed(), "counter", v.counter())));
    m.put("rngs", r);
    m.put("scalars", new TreeMap<>(scalars));
    return Json.write(m) + "\n";
  }

  static TrainingState fromJson(Path file, String text) {
    Object parsed;
    try {
      parsed = Json.parse(text, file.toString());
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(file + " is corrupt: " + e.getMessage());
    }
    if (!(parsed instanceof Map<?, ?> m)) throw new CheckpointException(file + " is corrupt: not a JSON object");
    long format = num(file, m, "format").longValue();
    if (format != FORMAT) throw new CheckpointException(file + " has format " + format + "; this version reads format " + FORMAT);
    Map<?, ?> loader = map(file, m, "loader");
    Map<String, Rng.State> rngs = new LinkedHashMap<>();
    map(file, m, "rngs").forEach((k, v) -> {
      if (!(v instanceof Map<?, ?> s)) throw new CheckpointException(file + " is corrupt: rngs." + k + " is not an object");
      rngs.put(String.valueOf(k), new Rng.State(num(file, s, "seed").longValue(), num(file, s, "counter").longValue()));
    });
    Map<String, Double> scalars = new LinkedHashMap<>();
    map(file, m, "scalars").forEach((k, v) -> scalars.put(String.valueOf(k), v == null ? Double.NaN : ((Number) v).doubleValue()));
    if (!(m.get("model") instanceof String model)) throw new CheckpointException(file + " is corrupt: no model name");
    return new TrainingState(model, num(file, m, "step").longValue(), num(file, m, "schedule_step").longValue(),
        new LoaderPosition(num(file, loader, "epoch").intValue(), num(file, loader, "batch").intValue()), rngs, scalars);
  }

  private static Number num(Path file, Map<?, ?> m, String key) {
    if (!(m.get(key) instanceof Number n)) throw new CheckpointException(file + " is corrupt: '" + key + "' is missing or not a number");
    return n;
  }

  private static Map<?, ?> map(Path file, Map<?, ?> m, String key) {
    if (!(m.get(key) instanceof Map<?, ?> r)) throw new CheckpointException(file + " is corrupt: '" + key + "' is missing or not an object");
    return r;
  }
}
