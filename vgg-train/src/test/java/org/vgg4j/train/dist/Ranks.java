package org.vgg4j.train.dist;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Test fixture: W ranks of one run as threads of the test JVM, each with its own {@link TcpProcessGroup} on a
 * free localhost port. Sockets are per rank exactly as between processes; a thread closing its sockets abruptly
 * is what the kernel does for a process that dies.
 */
public final class Ranks {
    private Ranks() {
    }

    /** Work of one rank. */
    @FunctionalInterface
    public interface Body<T> {
        T run(int rank, TcpProcessGroup group) throws Exception;
    }

    public static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static LaunchEnv env(int rank, int world, int port) {
        return new LaunchEnv(rank, world, rank, world, "127.0.0.1", port, "test");
    }

    /** Runs {@code body} on {@code world} connected ranks; each entry is the rank's result or its exception. */
    public static <T> List<Object> run(int world, Duration timeout, Body<T> body) throws InterruptedException {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<Object>> fs = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                int rank = r;
                Callable<Object> c = () -> {
                    try (TcpProcessGroup g = TcpProcessGroup.connect(env(rank, world, port),
                            new TcpProcessGroup.Options(timeout, timeout))) {
                        return body.run(rank, g);
                    } catch (Exception | Error e) {
                        return e;
                    }
                };
                fs.add(pool.submit(c));
            }
            List<Object> out = new ArrayList<>();
            for (Future<Object> f : fs) {
                try {
                    out.add(f.get(120, TimeUnit.SECONDS)); // far above any test's need: a hang fails instead of blocking
                } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                    out.add(e);
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }
}
