package org.vgg4j.train.dist;

import java.util.Map;

/**
 * Where this process stands in a multi-process run, read from the environment a launcher set: torchrun's variables
 * (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT — also what Kubernetes operators and
 * most other launchers set), or Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE, rank 0's
 * host = the first host of SLURM_JOB_NODELIST / SLURM_NODELIST, port MASTER_PORT or 29500).
 *
 * <p>Is: parsing and checking, from a map (so tests need no real environment); every error names the variable, its
 * value and what was expected. Is not: the connection (see {@link TcpProcessGroup}) or device selection.
 *
 * @param rank           this process in [0, worldSize)
 * @param worldSize      processes in the run
 * @param localRank      this process on its machine in [0, localWorldSize) (picks the GPU)
 * @param localWorldSize processes on this machine
 * @param masterAddr     host name or address where rank 0 listens
 * @param masterPort     TCP port where rank 0 listens
 * @param source         which convention supplied the values ("torchrun", "slurm", "single")
 */
public record LaunchEnv(int rank, int worldSize, int localRank, int localWorldSize, String masterAddr, int masterPort,
                        String source) {
    /** torchrun's default port, used when Slurm runs without MASTER_PORT. */
    public static final int DEFAULT_PORT = 29500;

    public LaunchEnv {
        if (worldSize < 1) {
            throw new IllegalArgumentException("world size " + worldSize + ": must be >= 1");
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " outside [0, world size " + worldSize + ")");
        }
        if (localWorldSize < 1 || localRank < 0 || localRank >= localWorldSize) {
            throw new IllegalArgumentException("local rank " + localRank + " outside [0, local world size " + localWorldSize + ")");
        }
        if (masterPort < 1 || masterPort > 65535) {
            throw new IllegalArgumentException("master port " + masterPort + " outside [1, 65535]");
        }
    }

    /** One process, nothing to connect to. */
    public static LaunchEnv single() {
        return new LaunchEnv(0, 1, 0, 1, "127.0.0.1", DEFAULT_PORT, "single");
    }

    public boolean distributed() {
        return worldSize > 1;
    }

    /** True when the map carries a launcher's variables for more than one process (torchrun's or Slurm's). */
    public static boolean present(Map<String, String> env) {
        if (env.containsKey("WORLD_SIZE")) {
            return !"1".equals(env.get("WORLD_SIZE").trim());
        }
        return env.containsKey("SLURM_PROCID") && env.containsKey("SLURM_NTASKS") && !"1".equals(env.get("SLURM_NTASKS").trim());
    }

    /**
     * Reads the launcher's variables: torchrun's when RANK or WORLD_SIZE is set (they win over Slurm's, as a
     * torchrun inside an sbatch script expects), else Slurm's when SLURM_PROCID is set, else one process.
     *
     * @throws IllegalArgumentException naming the variable, its value and what was expected
     */
    public static LaunchEnv from(Map<String, String> env) {
        if (env.containsKey("RANK") || env.containsKey("WORLD_SIZE")) {
            int world = integer(env, "WORLD_SIZE", null, "the number of processes, >= 1");
            if (world < 1) {
                throw bad("WORLD_SIZE", env.get("WORLD_SIZE"), "the number of processes, >= 1");
            }
            int rank = integer(env, "RANK", null, "this process's rank in [0, WORLD_SIZE=" + world + ")");
            if (rank < 0 || rank >= world) {
                throw bad("RANK", env.get("RANK"), "a rank in [0, WORLD_SIZE=" + world + ")");
            }
            int localWorld = integer(env, "LOCAL_WORLD_SIZE", "1", "processes on this machine, >= 1");
            if (localWorld < 1 || localWorld > world) {
                throw bad("LOCAL_WORLD_SIZE", env.get("LOCAL_WORLD_SIZE"), "processes on this machine, in [1, WORLD_SIZE="
                        + world + "]");
            }
            int localRank = integer(env, "LOCAL_RANK", "0", "this process's rank on its machine");
            if (localRank < 0 || localRank >= localWorld) {
                throw bad("LOCAL_RANK", env.get("LOCAL_RANK"), "a rank in [0, LOCAL_WORLD_SIZE=" + localWorld + ")");
            }
            String addr = world == 1 ? env.getOrDefault("MASTER_ADDR", "127.0.0.1") : required(env, "MASTER_ADDR",
                    "the host name or address of rank 0 (torchrun sets it; set it yourself with other launchers)");
            int port = world == 1 && !env.containsKey("MASTER_PORT") ? DEFAULT_PORT : port(env, "MASTER_PORT");
            return new LaunchEnv(rank, world, localRank, localWorld, addr.trim(), port, "torchrun");
        }
        if (env.containsKey("SLURM_PROCID")) {
            int world = integer(env, "SLURM_NTASKS", null, "the number of tasks (srun --ntasks), >= 1");
            if (world < 1) {
                throw bad("SLURM_NTASKS", env.get("SLURM_NTASKS"), "the number of tasks (srun --ntasks), >= 1");
            }
            int rank = integer(env, "SLURM_PROCID", null, "this task's rank in [0, SLURM_NTASKS=" + world + ")");
            if (rank < 0 || rank >= world) {
                throw bad("SLURM_PROCID", env.get("SLURM_PROCID"), "a rank in [0, SLURM_NTASKS=" + world + ")");
            }
            int localWorld = env.containsKey("SLURM_NTASKS_PER_NODE") ? tasksPerNode(env.get("SLURM_NTASKS_PER_NODE")) : 1;
            int localRank = integer(env, "SLURM_LOCALID", "0", "this task's rank on its node");
            if (localRank < 0) {
                throw bad("SLURM_LOCALID", env.get("SLURM_LOCALID"), "a rank on the node, >= 0");
            }
            localWorld = Math.max(localWorld, localRank + 1); // heterogeneous jobs report only the first node's count
            String addr = env.get("MASTER_ADDR");
            if (addr == null || addr.isBlank()) {
                String key = env.containsKey("SLURM_JOB_NODELIST") ? "SLURM_JOB_NODELIST" : "SLURM_NODELIST";
                String list = env.get(key);
                if (list == null || list.isBlank()) {
                    if (world > 1) {
                        throw new IllegalArgumentException("neither MASTER_ADDR nor SLURM_JOB_NODELIST / SLURM_NODELIST is"
                                + " set; expected the host of rank 0 (Slurm sets the node list inside an allocation)");
                    }
                    list = "127.0.0.1";
                }
                try {
                    addr = firstHost(list);
                } catch (IllegalArgumentException e) {
                    throw bad(key, list, "a Slurm host list such as node[01-04] or a,b (" + e.getMessage() + ")");
                }
            }
            int port = env.containsKey("MASTER_PORT") ? port(env, "MASTER_PORT") : DEFAULT_PORT;
            return new LaunchEnv(rank, world, localRank, localWorld, addr.trim(), port, "slurm");
        }
        return single();
    }

    /**
     * The first host of a Slurm host list: "node[01-04]" -> "node01", "gpu[3,5-7],cpu1" -> "gpu3",
     * "rack[1-2]-n[08-09]" -> "rack1-n08", "a,b" -> "a". Zero padding is kept, as Slurm names hosts with it.
     */
    public static String firstHost(String list) {
        String s = list.trim();
        StringBuilder host = new StringBuilder();
        int depth = 0;
        boolean takingBracket = false;
        boolean bracketDone = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '[') {
                if (depth > 0) {
                    throw new IllegalArgumentException("nested '[' at " + i);
                }
                depth = 1;
                takingBracket = true;
                bracketDone = false;
            } else if (c == ']') {
                if (depth == 0) {
                    throw new IllegalArgumentException("']' without '[' at " + i);
                }
                if (!bracketDone && host.length() == 0) {
                    throw new IllegalArgumentException("empty brackets at " + i);
                }
                depth = 0;
                takingBracket = false;
            } else if (depth > 0) {
                if (c == ',' || c == '-') {
                    bracketDone = true; // the first element of the bracket ends here
                } else if (!bracketDone) {
                    if (!Character.isDigit(c)) {
                        throw new IllegalArgumentException("'" + c + "' inside brackets at " + i + "; expected digits");
                    }
                    host.append(c);
                }
            } else if (c == ',') {
                break; // the first host of the list ends here
            } else {
                host.append(c);
            }
        }
        if (depth != 0 || takingBracket) {
            throw new IllegalArgumentException("'[' without ']'");
        }
        if (host.length() == 0) {
            throw new IllegalArgumentException("no host name");
        }
        return host.toString();
    }

    /** SLURM_NTASKS_PER_NODE looks like "4" or "2(x3),1": the first node's count. */
    private static int tasksPerNode(String v) {
        String first = v.split("[,(]")[0].trim();
        try {
            int n = Integer.parseInt(first);
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw bad("SLURM_NTASKS_PER_NODE", v, "tasks per node such as 4 or 2(x3)");
    }

    private static int port(Map<String, String> env, String name) {
        int p = integer(env, name, null, "rank 0's TCP port in [1, 65535]");
        if (p < 1 || p > 65535) {
            throw bad(name, env.get(name), "rank 0's TCP port in [1, 65535]");
        }
        return p;
    }

    private static String required(Map<String, String> env, String name, String expected) {
        String v = env.get(name);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException(name + " is not set; expected " + expected);
        }
        return v;
    }

    private static int integer(Map<String, String> env, String name, String fallback, String expected) {
        String v = env.get(name);
        if (v == null) {
            if (fallback == null) {
                throw new IllegalArgumentException(name + " is not set; expected " + expected);
            }
            v = fallback;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw bad(name, v, expected);
        }
    }

    private static IllegalArgumentException bad(String name, String value, String expected) {
        return new IllegalArgumentException(name + "=" + value + " is invalid; expected " + expected);
    }
}
