# Sourced by every script the README names: finds a JDK 25+ and exports JAVA_HOME.
# Order: $JAVA_HOME if it is 25 or newer, then the usual install paths, else a message saying how to get one.
c4j_java_major() {  # prints the major version of the java binary given, or nothing
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}
c4j_find_jdk() {
  local candidates=()
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  candidates+=(/usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25-jdk /usr/lib/jvm/java-25-openjdk-amd64
               /usr/lib/jvm/jdk-25* /usr/lib/jvm/*25* /opt/java/openjdk /opt/jdk-25* "$HOME"/.sdkman/candidates/java/current
               /Library/Java/JavaVirtualMachines/*/Contents/Home)
  local c major
  for c in "${candidates[@]}"; do
    [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    major=$(c4j_java_major "$c/bin/java")
    if [ -n "$major" ] && [ "$major" -ge 25 ]; then export JAVA_HOME="$c"; return 0; fi
  done
  cat >&2 <<MSG
colossal4j needs a JDK 25 or newer and found none.
  Looked at: \$JAVA_HOME (${JAVA_HOME:-unset}) and /usr/lib/jvm/*25*, /opt/java/openjdk, ~/.sdkman.
  Get one: apt-get install temurin-25-jdk (Adoptium's apt repository), or 'sdk install java 25-tem',
  or unpack a JDK 25 from https://adoptium.net and set JAVA_HOME to it.
MSG
  return 1
}
