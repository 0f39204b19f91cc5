package io.colossal4j.train.config;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.math.BigInteger;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Builds config records from a YAML tree (maps, lists, scalars), typed by the records themselves. A missing key
 * takes its value from the enclosing default; an unknown key, a value of the wrong type and a value the record
 * rejects are errors naming the full key path. Values set with {@code --set} arrive as {@link SetValue} text and
 * are read as the type the schema expects there.
 */
final class ConfigBinder {
  private ConfigBinder() {}

  /** A value given on the command line, typed only when it reaches its place in the schema. */
  record SetValue(String text) {}

  static Object bind(Type type, Object node, String path, Object fallback) {
    Class<?> raw = raw(type);
    if (node instanceof SetValue sv) node = fromText(sv.text(), raw);
    if (raw == Optional.class) {
      Type arg = ((ParameterizedType) type).getActualTypeArguments()[0];
      Object inner = fallback instanceof Optional<?> o ? o.orElse(null) : null;
      return node == null ? Optional.empty() : Optional.of(bind(arg, node, path, inner));
    }
    if (node == null && fallback != null && !(raw.isRecord() || raw.isSealed())) return fallback;
    Method parser = ConfigSchema.parser(raw);
    if (parser != null) return parseScalar(parser, node, path);
    if (raw.isSealed()) return bindVariant(raw, node, path, fallback);
    if (raw.isRecord()) return bindRecord(raw, node, path, fallback);
    if (raw.isEnum()) return bindEnum(raw, node, path);
    if (raw == List.class) return bindList(((ParameterizedType) type).getActualTypeArguments()[0], node, path);
    return bindScalar(raw, node, path);
  }

  private static Object bindRecord(Class<?> type, Object node, String path, Object fallback) {
    if (fallback == null || fallback.getClass() != type) fallback = ConfigSchema.defaults(type);
    if (node == null) return fallback;
    if (!(node instanceof Map<?, ?> map)) throw wrongType(path, node, "a mapping of keys (" + keys(type) + ")");
    Map<String, RecordComponent> comps = ConfigSchema.components(type);
    for (Object k : map.keySet()) {
      String key = String.valueOf(k);
      boolean variantName = key.equals("name") && Arrays.stream(type.getInterfaces()).anyMatch(Class::isSealed);
      if (!comps.containsKey(key) && !variantName)
        throw new ConfigException(join(path, key), "unknown key" + Suggest.didYouMean(key, comps.keySet(), prefix(path))
            + "; valid keys" + (path.isEmpty() ? "" : " under " + path) + ": " + String.join(", ", comps.keySet()));
    }
    Object[] args = new Object[comps.size()];
    int i = 0;
    for (var e : comps.entrySet()) {
      RecordComponent c = e.getValue();
      Object def = ConfigSchema.component(fallback, c);
      Object child = map.get(e.getKey());
      if (map.containsKey(e.getKey()) && child == null && c.getType() != Optional.class)
        throw new ConfigException(join(path, e.getKey()), "needs a value (remove the key to use the default, " + ConfigWriter.show(def) + ")");
      args[i++] = map.containsKey(e.getKey()) ? bind(c.getGenericType(), child, join(path, e.getKey()), def) : def;
    }
    return construct(type, args, path);
  }

  private static Object construct(Class<?> type, Object[] args, String path) {
    Class<?>[] types = Arrays.stream(type.getRecordComponents()).map(RecordComponent::getType).toArray(Class<?>[]::new);
    try {
      return type.getDeclaredConstructor(types).newInstance(args);
    } catch (InvocationTargetException e) {
      if (e.getCause() instanceof ConfigException ce) throw ce.under(path);
      throw new ConfigException(path, String.valueOf(e.getCause().getMessage()));
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot construct " + type.getName(), e);
    }
  }

  private static Object bindVariant(Class<?> sealed, Object node, String path, Object fallback) {
    Map<String, Class<?>> variants = ConfigSchema.variants(sealed);
    String name;
    if (node == null) return fallback != null ? fallback : ConfigSchema.defaults(sealed);
    if (node instanceof String || node instanceof Number) name = String.valueOf(node);
    else if (node instanceof Map<?, ?> m && m.get("name") != null)
      name = m.get("name") instanceof SetValue sv ? sv.text().trim() : String.valueOf(m.get("name"));
    else if (node instanceof Map<?, ?> && fallback != null) name = ConfigSchema.variantName(fallback.getClass());
    else throw wrongType(path, node, "one of " + String.join(", ", variants.keySet()) + ", or a mapping with 'name: <one of them>'");
    Class<?> variant = variants.get(name);
    if (variant == null)
      throw new ConfigException(node instanceof Map ? join(path, "name") : path, ConfigException.show(name) + " is not one of "
          + String.join(", ", variants.keySet()) + Suggest.didYouMean(name, variants.keySet(), ""));
    return bindRecord(variant, node instanceof Map ? node : null, path, fallback);
  }

  private static Object bindEnum(Class<?> type, Object node, String path) {
    if (!(node instanceof String || node instanceof Integer)) throw wrongType(path, node, "one of " + enumNames(type));
    String text = String.valueOf(node);
    for (Object c : type.getEnumConstants())
      if (ConfigSchema.enumName((Enum<?>) c).equalsIgnoreCase(text) || ConfigSchema.enumName((Enum<?>) c).equalsIgnoreCase(text.replace('-', '_')))
        return c;
    throw new ConfigException(path, ConfigException.show(text) + " is not one of " + enumNames(type)
        + Suggest.didYouMean(text, Arrays.stream(type.getEnumConstants()).map(c -> ConfigSchema.enumName((Enum<?>) c)).toList(), ""));
  }

  private static Object bindList(Type element, Object node, String path) {
    if (!(node instanceof List<?> list)) throw wrongType(path, node, "a list, e.g. [1, 2]");
    List<Object> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) out.add(bind(element, list.get(i), path + "[" + i + "]", null));
    return out;
  }

  private static Object parseScalar(Method parser, Object node, String path) {
    if (!(node instanceof String || node instanceof Number || node instanceof Boolean)) throw wrongType(path, node, "a single value");
    try {
      return parser.invoke(null, String.valueOf(node));
    } catch (InvocationTargetException e) {
      if (e.getCause() instanceof ConfigException ce) throw ce.under(path);
      throw new ConfigException(path, ConfigException.show(node) + ": " + e.getCause().getMessage());
    } catch (IllegalAccessException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Object bindScalar(Class<?> raw, Object node, String path) {
    if (raw == String.class) {
      if (node instanceof Map || node instanceof List || node == null) throw wrongType(path, node, "a string");
      return String.valueOf(node);
    }
    if (raw == Path.class) {
      if (!(node instanceof String s)) throw wrongType(path, node, "a path");
      return Path.of(s);
    }
    if (raw == int.class || raw == Integer.class) return (int) integer(path, node, Integer.MIN_VALUE, Integer.MAX_VALUE);
    if (raw == long.class || raw == Long.class) return integer(path, node, Long.MIN_VALUE, Long.MAX_VALUE);
    if (raw == double.class || raw == Double.class) {
      if (!(node instanceof Number n)) throw wrongType(path, node, "a number");
      return n.doubleValue();
    }
    if (raw == boolean.class || raw == Boolean.class) {
      if (!(node instanceof Boolean b)) throw wrongType(path, node, "true or false");
      return b;
    }
    throw new IllegalStateException("config type " + raw.getName() + " at " + path + " is not supported by the binder");
  }

  private static long integer(String path, Object node, long min, long max) {
    BigInteger v = switch (node) {
      case Integer i -> BigInteger.valueOf(i);
      case Long l -> BigInteger.valueOf(l);
      case BigInteger b -> b;
      case null, default -> throw wrongType(path, node, "an integer");
    };
    if (v.compareTo(BigInteger.valueOf(min)) < 0 || v.compareTo(BigInteger.valueOf(max)) > 0)
      throw ConfigException.invalid(path, v, "an integer in [" + min + ", " + max + "]");
    return v.longValue();
  }

  /** Command-line text read as YAML (so 3 is a number, [0.9, 0.95] a list) unless the schema wants text. */
  private static Object fromText(String text, Class<?> target) {
    if (target == String.class || target == Path.class || ConfigSchema.parser(target) != null) return text;
    return Configs.parseYamlValue(text);
  }

  static ConfigException wrongType(String path, Object node, String expected) {
    String got = switch (node) {
      case null -> "nothing";
      case Map<?, ?> m -> "a mapping";
      case List<?> l -> "a list " + l;
      case String s -> "the string '" + s + "'";
      case Boolean b -> "the boolean " + b;
      default -> "the number " + node;
    };
    return new ConfigException(path, "expected " + expected + ", got " + got);
  }

  private static String keys(Class<?> type) { return String.join(", ", ConfigSchema.components(type).keySet()); }

  private static String enumNames(Class<?> type) {
    return Arrays.stream(type.getEnumConstants()).map(c -> ConfigSchema.enumName((Enum<?>) c)).collect(Collectors.joining(", "));
  }

  private static Class<?> raw(Type t) {
    return t instanceof ParameterizedType p ? (Class<?>) p.getRawType() : (Class<?>) t;
  }

  static String join(String path, String key) { return path.isEmpty() ? key : path + "." + key; }

  private static String prefix(String path) { return path.isEmpty() ? "" : path + "."; }
}
