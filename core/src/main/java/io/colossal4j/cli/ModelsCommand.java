package io.colossal4j.cli;

/** {@code colossal models}: lists the model zoo with parameter counts. */
final class ModelsCommand implements Main.Command {
  @Override public String summary() { return "list the model zoo with parameter counts"; }

  @Override public int run(String[] args) {
    System.out.println("model zoo: (populated as model families land)");
    return 0;
  }
}
