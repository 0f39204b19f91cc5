package io.colossal4j.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.distributed.RendezvousSpec;
import java.util.Map;
import org.junit.jupiter.api.Test;

class EnvRendezvousTest {
  static final String T = EnvRendezvous.TOKEN;

  @Test void noVariablesMeansSingleProcess() { assertTrue(EnvRendezvous.spec(Map.of("HOME", "/root")).isEmpty()); }

  @Test void torchrunVariables() {
    RendezvousSpec s = EnvRendezvous.spec(Map.of("RANK", "5", "WORLD_SIZE", "8", "LOCAL_RANK", "1", "LOCAL_WORLD_SIZE", "4",
        "MASTER_ADDR", "10.0.0.1", "MASTER_PORT", "29400", T, "tok", EnvRendezvous.TIMEOUT, "30")).orElseThrow();
    assertEquals(5, s.rank());
    assertEquals(8, s.worldSize());
    assertEquals(1, s.localRank());
    assertEquals(4, s.localWorldSize());
    assertEquals("10.0.0.1", s.masterAddr());
    assertEquals(29400, s.masterPort());
    assertEquals(30, s.timeout().toSeconds());
  }

  @Test void slurmVariablesWithCompressedNodeList() {
    RendezvousSpec s = EnvRendezvous.spec(Map.of("SLURM_PROCID", "3", "SLURM_NTASKS", "4", "SLURM_LOCALID", "1",
        "SLURM_NTASKS_PER_NODE", "2(x2)", "SLURM_JOB_NODELIST", "gpu[07-08,11],login1", "SLURM_JOB_ID", "123456", T, "tok")).orElseThrow();
    assertEquals(3, s.rank());
    assertEquals(4, s.worldSize());
    assertEquals(1, s.localRank());
    assertEquals(2, s.localWorldSize());
    assertEquals("gpu07", s.masterAddr());
    assertEquals(20000 + 123456 % 20000, s.masterPort());
    assertEquals("123456", s.jobId());
  }

  @Test void openMpiVariablesNeedMasterAddr() {
    RendezvousSpec s = EnvRendezvous.spec(Map.of("OMPI_COMM_WORLD_RANK", "2", "OMPI_COMM_WORLD_SIZE", "3", "OMPI_COMM_WORLD_LOCAL_RANK", "0",
        "OMPI_COMM_WORLD_LOCAL_SIZE", "1", "MASTER_ADDR", "node0", T, "tok")).orElseThrow();
    assertEquals(2, s.rank());
    assertEquals(29500, s.masterPort());
    var e = assertThrows(IllegalArgumentException.class,
        () -> EnvRendezvous.spec(Map.of("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "2", T, "tok")));
    assertTrue(e.getMessage().contains("MASTER_ADDR is not set") && e.getMessage().contains("mpirun -x"), e.getMessage());
  }

  @Test void badValuesAreNamed() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> EnvRendezvous.spec(Map.of("RANK", "4", "WORLD_SIZE", "4", "MASTER_ADDR", "h", T, "tok")));
    assertEquals("RANK=4 is out of range; valid: 0..3", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> EnvRendezvous.spec(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "70000", T, "tok")));
    assertEquals("MASTER_PORT=70000 is out of range; valid: 1..65535", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> EnvRendezvous.spec(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "h")));
    assertTrue(e.getMessage().contains(T + " is not set"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> EnvRendezvous.spec(Map.of("RANK", "x", "WORLD_SIZE", "2", "MASTER_ADDR", "h", T, "t")));
    assertEquals("RANK='x' is not an integer", e.getMessage());
  }

  @Test void nodeListFirstHost() {
    assertEquals("node01", NodeList.firstHost("node[01-04,07]"));
    assertEquals("a", NodeList.firstHost("a,b[1-2]"));
    assertEquals("rack1-n3x", NodeList.firstHost("rack1-n[3-4]x"));
  }

  @Test void launchOptionsParseAndValidate() {
    LaunchOptions o = LaunchOptions.parse(new String[] {"--nproc-per-node", "4", "--nnodes=2", "--node-rank", "1", "--master-port", "29501",
        "cfg.yaml", "--set", "train.epochs=1"});
    assertEquals(8, o.worldSize());
    assertEquals("train", o.command());
    assertEquals(java.util.List.of("cfg.yaml", "--set", "train.epochs=1"), o.args());
    assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(new String[] {"--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "2", "--master-port", "1"}))
        .getMessage().contains("--node-rank 2 is out of range for --nnodes 2; valid: 0..1"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(new String[] {"--nproc-per-node", "2", "--master-port", "65536"}))
        .getMessage().contains("--master-port 65536 is out of range"));
    assertEquals(29500, LaunchOptions.parse(new String[] {"--nproc-per-node", "2", "--nnodes", "2"}).masterPort());
    assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(new String[] {"cfg.yaml"})).getMessage().contains("--nproc-per-node is required"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(new String[] {"--nproc-per-node", "2", "--bogus", "1"})).getMessage().contains("unknown option --bogus"));
  }
}
