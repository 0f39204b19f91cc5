package io.colossal4j.cli;

import io.colossal4j.models.ModelSpec;
import io.colossal4j.models.Zoo;

/** {@code colossal models}: lists the model zoo with parameter counts. */
final class ModelsCommand implements Main.Command {
  @Override public String summary() { return "list the model zoo with parameter counts"; }

  @Override public int run(String[] args) {
    System.out.printf("%-28s %14s  %s%n", "model", "parameters", "description");
    for (Zoo.Entry e : Zoo.entries().values()) {
      long n = e.parameterCount(ModelSpec.of(e.name(), 0));
      System.out.printf("%-28s %14s  %s%n", e.name(), String.format("%,d", n), e.description());
    }
    System.out.println("\nUse one in a config as  model: {name: <model>, num_classes: N}  (see examples/).");
    return 0;
  }
}
