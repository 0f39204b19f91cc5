package io.colossal4j.train.config;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The reflective view of the config records that the binder and writer share: YAML key names (snake_case of the
 * component names), variant names of sealed types, enum spellings, defaults, and scalar types read by
 * {@code static parse(String)}.
 */
final class ConfigSchema {
  private ConfigSchema() {}

  static String key(RecordComponent c) {
    return c.getName().replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase(Locale.ROOT);
  }

  static Map<String, RecordComponent> components(Class<?> record) {
    Map<String, RecordComponent> m = new LinkedHashMap<>();
    for (RecordComponent c : record.getRecordComponents()) m.put(key(c), c);
    return m;
  }

  /** Variant name → record class of a sealed config interface. */
  static Map<String, Class<?>> variants(Class<?> sealed) {
    Map<String, Class<?>> m = new LinkedHashMap<>();
    for (Class<?> v : sealed.getPermittedSubclasses()) m.put(variantName(v), v);
    return m;
  }

  static String variantName(Class<?> variant) {
    ConfigName n = variant.getAnnotation(ConfigName.class);
    return n != null ? n.value() : variant.getSimpleName().toLowerCase(Locale.ROOT);
  }

  static String enumName(Enum<?> e) {
    return e instanceof ConfigEnum ce ? ce.configName() : e.name().toLowerCase(Locale.ROOT);
  }

  /** The {@code static parse(String)} of a scalar value type, or null. */
  static Method parser(Class<?> type) {
    try {
      Method m = type.getMethod("parse", String.class);
      return Modifier.isStatic(m.getModifiers()) && type.isAssignableFrom(m.getReturnType()) ? m : null;
    } catch (NoSuchMethodException e) {
      return null;
    }
  }

  /** The record's {@code static defaults()}. */
  static Object defaults(Class<?> type) {
    try {
      return type.getMethod("defaults").invoke(null);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException(type.getName() + " has no public static defaults()", e);
    }
  }

  static Object component(Object record, RecordComponent c) {
    try {
      return c.getAccessor().invoke(record);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException(e);
    }
  }
}
