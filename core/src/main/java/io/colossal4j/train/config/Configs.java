package io.colossal4j.train.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.snakeyaml.engine.v2.api.Dump;
import org.snakeyaml.engine.v2.api.DumpSettings;
import org.snakeyaml.engine.v2.api.Load;
import org.snakeyaml.engine.v2.api.LoadSettings;
import org.snakeyaml.engine.v2.common.FlowStyle;
import org.snakeyaml.engine.v2.exceptions.YamlEngineException;

/**
 * Reading a run's configuration: YAML file, then {@code --set key.path=value} overrides, then typing and
 * validation of the whole document, all before any work starts. Errors are {@link ConfigException}s naming the
 * key path, the value and what is valid.
 */
public final class Configs {
  private Configs() {}

  /** Loads {@code file} (null: start from the defaults) and applies {@code sets}, each {@code key.path=value}. */
  public static RunConfig load(Path file, List<String> sets) {
    if (file == null) return parse("{}", "defaults", sets);
    String text;
    try {
      text = Files.readString(file);
    } catch (NoSuchFileException e) {
      throw new ConfigException("", "config file not found: " + file.toAbsolutePath());
    } catch (IOException e) {
      throw new ConfigException("", "cannot read config file " + file + ": " + e.getMessage());
    }
    return parse(text, file.toString(), sets);
  }

  /** Like {@link #load} for YAML text; {@code origin} names it in messages. */
  public static RunConfig parse(String yaml, String origin, List<String> sets) {
    Object root;
    try {
      root = new Load(LoadSettings.builder().setLabel(origin).setAllowDuplicateKeys(false).build()).loadFromString(yaml);
    } catch (YamlEngineException e) {
      throw new ConfigException("", origin + " is not valid YAML: " + e.getMessage());
    }
    if (root == null) root = new LinkedHashMap<String, Object>();
    if (!(root instanceof Map<?, ?>)) throw new ConfigException("", origin + ": the top level must be a mapping of keys (name, seed, model, ...)");
    @SuppressWarnings("unchecked")
    Map<String, Object> tree = (Map<String, Object>) root;
    for (String s : sets) applySet(tree, s);
    try {
      return (RunConfig) ConfigBinder.bind(RunConfig.class, tree, "", RunConfig.defaults());
    } catch (ConfigException e) {
      ConfigException withOrigin = new ConfigException(e.key(), e.detail() + " (in " + origin + (sets.isEmpty() ? "" : " with --set " + String.join(" ", sets)) + ")");
      withOrigin.setStackTrace(e.getStackTrace());
      throw withOrigin;
    }
  }

  /** The resolved configuration as YAML, every default filled in; {@link #parse} of it gives an equal config. */
  public static String toYaml(RunConfig config) {
    DumpSettings settings = DumpSettings.builder().setDefaultFlowStyle(FlowStyle.BLOCK).setIndent(2).build();
    return new Dump(settings).dumpToString(ConfigWriter.tree(config));
  }

  /** Splits the arguments {@code --set a.b=1 --set c=x} (also {@code --set=a.b=1}) out of {@code args}. */
  public static List<String> setsFrom(List<String> args) {
    List<String> out = new java.util.ArrayList<>();
    for (int i = 0; i < args.size(); i++) {
      String a = args.get(i);
      if (a.equals("--set")) {
        if (i + 1 >= args.size()) throw new ConfigException("", "--set needs key.path=value after it");
        out.add(args.get(++i));
      } else if (a.startsWith("--set=")) out.add(a.substring(6));
    }
    return out;
  }

  @SuppressWarnings("unchecked")
  private static void applySet(Map<String, Object> tree, String set) {
    int eq = set.indexOf('=');
    if (eq <= 0 || set.substring(0, eq).isBlank() || set.substring(0, eq).contains(".."))
      throw new ConfigException("", "--set expects key.path=value (e.g. --set train.epochs=3), got '" + set + "'");
    String[] keys = set.substring(0, eq).trim().split("\\.");
    Map<String, Object> node = tree;
    for (int i = 0; i < keys.length - 1; i++) {
      Object child = node.get(keys[i]);
      if (child instanceof Map<?, ?> m) node = (Map<String, Object>) m;
      else {
        // A variant given by name alone (optimizer: sgd) becomes {name: sgd} so one of its keys can be set.
        Map<String, Object> fresh = new LinkedHashMap<>();
        if (child instanceof String || child instanceof ConfigBinder.SetValue) fresh.put("name", child);
        node.put(keys[i], fresh);
        node = fresh;
      }
    }
    node.put(keys[keys.length - 1], new ConfigBinder.SetValue(set.substring(eq + 1)));
  }

  static Object parseYamlValue(String text) {
    try {
      return new Load(LoadSettings.builder().build()).loadFromString(text);
    } catch (YamlEngineException e) {
      return text;
    }
  }
}
