package io.colossal4j.train.config;

/** An enum whose YAML spelling differs from its lower-cased constant name ({@code 2.5d}, {@code 1f1b}, {@code 2}). */
public interface ConfigEnum {
  String configName();
}
