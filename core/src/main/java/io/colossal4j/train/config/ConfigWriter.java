package io.colossal4j.train.config;

import java.lang.reflect.RecordComponent;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Turns config records back into a YAML tree, in the spelling the binder reads (so printing and re-reading round-trips). */
final class ConfigWriter {
  private ConfigWriter() {}

  static Object tree(Object value) {
    return switch (value) {
      case null -> null;
      case Optional<?> o -> o.map(ConfigWriter::tree).orElse(null);
      case Enum<?> e -> ConfigSchema.enumName(e);
      case Path p -> p.toString();
      case CheckpointConfig.Resume r -> r.text();
      case MemorySize m -> m.toString();
      case List<?> l -> {
        List<Object> out = new ArrayList<>();
        for (Object o : l) out.add(tree(o));
        yield out;
      }
      case Record r -> record(r);
      default -> value; // String, Number, Boolean
    };
  }

  private static Map<String, Object> record(Record r) {
    Map<String, Object> m = new LinkedHashMap<>();
    boolean variant = java.util.Arrays.stream(r.getClass().getInterfaces()).anyMatch(Class::isSealed);
    if (variant) m.put("name", ConfigSchema.variantName(r.getClass()));
    for (RecordComponent c : r.getClass().getRecordComponents()) {
      Object v = ConfigSchema.component(r, c);
      if (v instanceof Optional<?> o && o.isEmpty()) continue;
      m.put(ConfigSchema.key(c), tree(v));
    }
    return m;
  }

  /** A value as it would be written in YAML, for messages. */
  static String show(Object value) {
    Object t = tree(value);
    return t == null ? "unset" : String.valueOf(t);
  }
}
