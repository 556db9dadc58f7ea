package org.vgg4j.train.dist;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.core.parallel.ProcessGroup;

/**
 * A {@link ProcessGroup} over TCP: the rendezvous (rank 0 listens on MASTER_PORT, the others connect to
 * MASTER_ADDR:MASTER_PORT, retrying until a timeout that names the address) and a star of sockets through rank 0
 * that carries broadcasts, gathers, barriers and {@link TcpAllReduce}'s buffers.
 *
 * <p>Is: the control plane of a multi-process run and the CPU collective's transport (PyTorch's gloo plays this
 * role next to NCCL). Is not: bandwidth-optimal — everything passes through rank 0, whose link carries
 * (size - 1) x the payload each way; that is fine for the control plane and CPU training, NCCL is the fast path.
 *
 * <p>Failure: every read has a timeout ({@link Options#operationTimeout}; twice that on ranks other than 0, so that
 * rank 0, which hears from everybody, is the first to notice a stuck rank and names it); a peer that closes its socket (its process
 * died: the kernel closes a dead process's sockets) or stops answering makes rank 0 send an ABORT frame naming it to
 * every other rank and fail, and the others fail with rank 0's message; nobody hangs. A rank whose own code fails
 * calls {@link #abort(String)} so the others learn why. After a failure every call throws the first error again.
 *
 * <p>Wire format: frames of [type byte][int length][length bytes], big-endian; a HELLO of (magic, rank, world size)
 * from each rank, checked by rank 0 (duplicate ranks, disagreeing world sizes), answered by a WELCOME.
 */
public final class TcpProcessGroup implements ProcessGroup {
    private static final Logger LOG = LoggerFactory.getLogger(TcpProcessGroup.class);
    private static final int MAGIC = 0x56474734; // "VGG4"
    static final byte DATA = 1;
    static final byte ABORT = 2;
    private static final byte HELLO = 3;
    private static final byte WELCOME = 4;

    /**
     * @param connectTimeout   how long rank 0 waits for everybody, and the others keep retrying to reach rank 0
     * @param operationTimeout the longest wait for one message (covers the slowest rank's step, and rank 0's
     *                         validation pass while the others wait for its result)
     */
    public record Options(Duration connectTimeout, Duration operationTimeout) {
        /** torch.distributed's defaults: 30 minutes for both. */
        public static final Options DEFAULT = new Options(Duration.ofMinutes(30), Duration.ofMinutes(30));

        public Options {
            if (connectTimeout.isNegative() || connectTimeout.isZero() || operationTimeout.isNegative()
                    || operationTimeout.isZero()) {
                throw new IllegalArgumentException("timeouts " + connectTimeout + ", " + operationTimeout + ": must be > 0");
            }
        }
    }

    /** Thrown on every rank when the group breaks; the message names the rank at fault when known. */
    public static final class GroupFailure extends IllegalStateException {
        GroupFailure(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private final int rank;
    private final int size;
    private final String master; // "host:port", for messages
    private final Link[] links;  // rank 0: one per other rank (index = rank, [0] null); others: [0] = rank 0
    private final int timeoutMillis;
    private GroupFailure broken;

    /** One socket and its buffered streams. */
    static final class Link {
        final int peer;
        final Socket socket;
        final DataInputStream in;
        final DataOutputStream out;

        Link(int peer, Socket socket) throws IOException {
            this.peer = peer;
            this.socket = socket;
            this.in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 16));
            this.out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16));
        }
    }

    private TcpProcessGroup(int rank, int size, String master, Link[] links, int timeoutMillis) {
        this.rank = rank;
        this.size = size;
        this.master = master;
        this.links = links;
        this.timeoutMillis = timeoutMillis;
    }

    /** Connects every rank of {@code env} (blocks until all are there, or fails naming the address / the missing ranks). */
    public static TcpProcessGroup connect(LaunchEnv env, Options options) {
        String master = env.masterAddr() + ":" + env.masterPort();
        // The others wait twice as long as rank 0: rank 0 talks to everybody, so when a rank is stuck rank 0's
        // timeout fires first and its ABORT names the culprit, instead of everybody blaming rank 0.
        int timeout = (int) Math.min(Integer.MAX_VALUE / 2, options.operationTimeout().toMillis()) * (env.rank() == 0 ? 1 : 2);
        Link[] links = new Link[env.rank() == 0 ? env.worldSize() : 1];
        if (env.worldSize() == 1) {
            return new TcpProcessGroup(0, 1, master, links, timeout);
        }
        try {
            if (env.rank() == 0) {
                acceptAll(env, options, links, master);
            } else {
                links[0] = dial(env, options, master);
            }
        } catch (IOException e) {
            for (Link l : links) {
                closeQuietly(l);
            }
            throw new GroupFailure("rank " + env.rank() + ": rendezvous at " + master + " failed: " + e.getMessage(), e);
        }
        for (Link l : links) {
            if (l != null) {
                try {
                    l.socket.setSoTimeout(timeout);
                } catch (IOException e) {
                    throw new GroupFailure("rank " + env.rank() + ": " + e.getMessage(), e);
                }
            }
        }
        LOG.info("rank {} of {} connected through {}", env.rank(), env.worldSize(), master);
        return new TcpProcessGroup(env.rank(), env.worldSize(), master, links, timeout);
    }

    private static void acceptAll(LaunchEnv env, Options options, Link[] links, String master) throws IOException {
        long deadline = System.nanoTime() + options.connectTimeout().toNanos();
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(env.masterPort()), env.worldSize());
            int joined = 1;
            while (joined < env.worldSize()) {
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) {
                    throw new IOException("only " + joined + " of " + env.worldSize() + " ranks arrived within "
                            + options.connectTimeout().toSeconds() + " s; missing ranks " + missing(links));
                }
                server.setSoTimeout((int) Math.min(left, Integer.MAX_VALUE));
                Socket s;
                try {
                    s = server.accept();
                } catch (SocketTimeoutException e) {
                    continue; // the deadline check above reports it
                }
                s.setTcpNoDelay(true);
                s.setSoTimeout((int) Math.min(Integer.MAX_VALUE, options.connectTimeout().toMillis()));
                Link l = new Link(-1, s);
                byte type = l.in.readByte();
                int len = l.in.readInt();
                if (type != HELLO || len != 12) {
                    s.close();
                    LOG.warn("rank 0 ignored a connection from {} that is not a vgg4j rank", s.getRemoteSocketAddress());
                    continue;
                }
                int magic = l.in.readInt();
                int peer = l.in.readInt();
                int world = l.in.readInt();
                if (magic != MAGIC) {
                    s.close();
                    LOG.warn("rank 0 ignored a connection from {} that is not a vgg4j rank", s.getRemoteSocketAddress());
                    continue;
                }
                if (world != env.worldSize()) {
                    s.close();
                    throw new IOException("rank " + peer + " (from " + s.getRemoteSocketAddress() + ") has WORLD_SIZE="
                            + world + "; rank 0 has " + env.worldSize());
                }
                if (peer < 1 || peer >= world || links[peer] != null) {
                    s.close();
                    throw new IOException("a process at " + s.getRemoteSocketAddress() + " claims rank " + peer
                            + (peer >= 1 && peer < world ? ", which another process already has (two processes with RANK="
                            + peer + ")" : ", outside [1, " + world + ")"));
                }
                links[peer] = new Link(peer, s);
                joined++;
            }
        }
        for (int r = 1; r < links.length; r++) {
            writeFrame(links[r], WELCOME, new byte[0], 0, 0);
        }
    }

    private static Link dial(LaunchEnv env, Options options, String master) throws IOException {
        long deadline = System.nanoTime() + options.connectTimeout().toNanos();
        IOException last = null;
        long pause = 50;
        while (System.nanoTime() < deadline) {
            Socket s = new Socket();
            try {
                s.connect(new InetSocketAddress(env.masterAddr(), env.masterPort()),
                        (int) Math.max(1, Math.min(10_000, (deadline - System.nanoTime()) / 1_000_000)));
                s.setTcpNoDelay(true);
                s.setSoTimeout((int) Math.min(Integer.MAX_VALUE, options.connectTimeout().toMillis()));
                Link l = new Link(0, s);
                byte[] hello = java.nio.ByteBuffer.allocate(12).putInt(MAGIC).putInt(env.rank()).putInt(env.worldSize()).array();
                writeFrame(l, HELLO, hello, 0, hello.length);
                byte type = l.in.readByte();
                int len = l.in.readInt();
                if (type != WELCOME || len != 0) {
                    throw new IOException("rank 0 answered with frame type " + type + " instead of WELCOME");
                }
                return l;
            } catch (IOException e) {
                last = e;
                try {
                    s.close();
                } catch (IOException ignored) {
                    // nothing to do
                }
                if (e instanceof EOFException) {
                    throw new IOException("rank 0 at " + master + " closed the connection during the rendezvous (it"
                            + " refused this rank; see its log)", e);
                }
            }
            try {
                Thread.sleep(pause);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while connecting to " + master, e);
            }
            pause = Math.min(1000, pause * 2);
        }
        throw new IOException("could not reach rank 0 at " + master + " within " + options.connectTimeout().toSeconds()
                + " s (last error: " + (last == null ? "none" : last.getMessage()) + "); is rank 0 running, and are"
                + " MASTER_ADDR / MASTER_PORT right?", last);
    }

    private static String missing(Link[] links) {
        StringBuilder b = new StringBuilder();
        for (int r = 1; r < links.length; r++) {
            if (links[r] == null) {
                b.append(b.length() == 0 ? "" : ",").append(r);
            }
        }
        return b.toString();
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    /** "host:port" of rank 0. */
    public String master() {
        return master;
    }

    @Override
    public synchronized byte[] broadcast(byte[] blob) {
        if (size == 1) {
            return blob;
        }
        checkHealthy();
        if (rank == 0) {
            for (int r = 1; r < size; r++) {
                send(r, blob, 0, blob.length, "broadcast");
            }
            return blob;
        }
        return receive(0, "broadcast");
    }

    @Override
    public synchronized byte[][] allGather(byte[] blob) {
        byte[][] all = new byte[size][];
        if (size == 1) {
            all[0] = blob;
            return all;
        }
        checkHealthy();
        if (rank == 0) {
            all[0] = blob;
            for (int r = 1; r < size; r++) {
                all[r] = receive(r, "gather");
            }
            java.io.ByteArrayOutputStream packed = new java.io.ByteArrayOutputStream();
            DataOutputStream d = new DataOutputStream(packed);
            try {
                for (byte[] b : all) {
                    d.writeInt(b.length);
                    d.write(b);
                }
            } catch (IOException e) {
                throw new IllegalStateException(e); // in memory: cannot happen
            }
            byte[] p = packed.toByteArray();
            for (int r = 1; r < size; r++) {
                send(r, p, 0, p.length, "gather");
            }
            return all;
        }
        send(0, blob, 0, blob.length, "gather");
        java.nio.ByteBuffer p = java.nio.ByteBuffer.wrap(receive(0, "gather"));
        for (int r = 0; r < size; r++) {
            all[r] = new byte[p.getInt()];
            p.get(all[r]);
        }
        return all;
    }

    /**
     * Tells the other ranks this one is failing (with {@code reason}) and closes the group; their next (or
     * current) collective call fails with a message naming this rank and the reason.
     */
    public synchronized void abort(String reason) {
        if (size == 1 || links == null) {
            return;
        }
        String message = "rank " + rank + " failed: " + reason;
        if (broken == null) {
            broken = new GroupFailure(message, null);
        }
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        for (Link l : links) {
            if (l != null) {
                try {
                    writeFrame(l, ABORT, m, 0, m.length);
                } catch (IOException ignored) {
                    // that peer is gone already
                }
            }
        }
        closeLinks();
    }

    @Override
    public synchronized void close() {
        closeLinks();
    }

    private void closeLinks() {
        for (Link l : links) {
            closeQuietly(l);
        }
    }

    private static void closeQuietly(Link l) {
        if (l != null) {
            try {
                l.socket.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }

    // ================================================================ frames (also used by TcpAllReduce)

    void checkHealthy() {
        if (broken != null) {
            throw new GroupFailure(broken.getMessage(), broken);
        }
    }

    /** Sends one DATA frame to {@code peer} (rank 0 to anybody, the others to rank 0 only). */
    void send(int peer, byte[] buf, int off, int len, String during) {
        Link l = links[peer];
        try {
            writeFrame(l, DATA, buf, off, len);
        } catch (IOException e) {
            throw fail(peer, "could not send to it during " + during + " (" + e.getMessage() + ")", e);
        }
    }

    /** Receives one DATA frame from {@code peer}. */
    byte[] receive(int peer, String during) {
        return receive(peer, null, during);
    }

    /** Receives one DATA frame from {@code peer} into {@code into} when its length fits exactly (else a new array). */
    byte[] receive(int peer, byte[] into, String during) {
        Link l = links[peer];
        try {
            byte type = l.in.readByte();
            int len = l.in.readInt();
            if (len < 0) {
                throw new IOException("frame of length " + len);
            }
            byte[] buf = into != null && into.length == len ? into : new byte[len];
            l.in.readFully(buf);
            if (type == ABORT) {
                String why = new String(buf, StandardCharsets.UTF_8);
                throw fail(peer, why, null, true);
            }
            if (type != DATA) {
                throw new IOException("unexpected frame type " + type);
            }
            return buf;
        } catch (SocketTimeoutException e) {
            throw fail(peer, "sent nothing for " + String.format(java.util.Locale.ROOT, "%.1f", timeoutMillis / 1000.0)
                    + " s during " + during + " (timeout; is it"
                    + " stuck, or much slower than this rank?)", e);
        } catch (EOFException e) {
            throw fail(peer, "closed its connection during " + during + " (did its process die?)", e);
        } catch (IOException e) {
            throw fail(peer, "connection lost during " + during + " (" + e.getMessage() + ")", e);
        }
    }

    private GroupFailure fail(int peer, String what, Throwable cause) {
        return fail(peer, what, cause, false);
    }

    /** Breaks the group: the error names {@code peer}; rank 0 passes it on to everybody else. */
    private GroupFailure fail(int peer, String what, Throwable cause, boolean peerAborted) {
        String message;
        if (peerAborted) {
            message = what; // already "rank k failed: ..." from the rank that knows
        } else if (rank == 0) {
            message = "rank " + peer + " " + what;
        } else {
            message = "rank 0 at " + master + " " + what;
        }
        GroupFailure f = new GroupFailure(message, cause);
        if (broken == null) {
            broken = f;
        }
        if (rank == 0) {
            byte[] m = message.getBytes(StandardCharsets.UTF_8);
            for (int r = 1; r < size; r++) {
                if (r != peer && links[r] != null) {
                    try {
                        writeFrame(links[r], ABORT, m, 0, m.length);
                    } catch (IOException ignored) {
                        // that one is gone too
                    }
                }
            }
        }
        LOG.error("rank {}: {}", rank, message);
        closeLinks();
        return f;
    }

    private static void writeFrame(Link l, byte type, byte[] buf, int off, int len) throws IOException {
        l.out.writeByte(type);
        l.out.writeInt(len);
        l.out.write(buf, off, len);
        l.out.flush();
    }

    @Override
    public String toString() {
        return "TCP group rank " + rank + " of " + size + " via " + master;
    }
}
