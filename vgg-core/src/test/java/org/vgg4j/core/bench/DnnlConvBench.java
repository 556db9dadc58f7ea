package org.vgg4j.core.bench;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SCRATCHPAD;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WEIGHTS;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.convolution_backward_data;
import org.bytedeco.dnnl.convolution_backward_weights;
import org.bytedeco.dnnl.convolution_forward;
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.reorder;
import org.bytedeco.dnnl.stream;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Benchmark (NOT a test) and feasibility probe: W1's convolution layers (VGG-16, batch 4, 224x224, float32) through
 * (A) the {@code cpu} backend as it routes them today (ND4J's oneDNN 2.3 ops, GemmConv for the first layer) and (B)
 * oneDNN 2.5 called directly through JavaCPP's preset, alternating A and B per layer in one JVM, several rounds.
 * B variants: "blk" = primitives with "any" formats, explicit reorders from/to plain NCHW user memory, weights
 * reordered once per step, ONE user scratchpad for all primitives; "nchw" = the primitives take NCHW directly.
 * Also checks that A and B agree (max |diff| / max |value|).
 * <pre>
 *   java -Dorg.bytedeco.javacpp.maxBytes=0 -cp ... org.vgg4j.core.bench.DnnlConvBench [rounds=5] [blk|nchw] \
 *        [direct|auto] [W1|W3]
 * </pre>
 * (maxBytes=0: its own test tensors are JavaCPP allocations, counted against -Xmx otherwise). This is the step-1
 * probe of docs/benchmarks.md ("Decision 3: oneDNN called directly"); the engine itself is {@code backend.cpu.DnnlConv}, which
 * shares work buffers across layers instead of keeping a blocked copy per layer as this probe does.
 * Legend: N batch, C in, K out, H = W side, P = Q out side.
 */
public final class DnnlConvBench {
    private DnnlConvBench() {
    }

    static final memory.data_type F32 = memory.data_type.f32;

    /** The direct path for one layer shape: primitives, formats and buffers created once. */
    static final class Direct {
        final engine eng;
        final stream s;
        final int n, c, k, side, pad;
        final memory xUser, wUser, bUser, yUser, dyUser, dxUser, dwUser, dbUser;
        final convolution_forward fwd;
        final convolution_backward_data bwdData;
        final convolution_backward_weights bwdW;
        final convolution_forward.primitive_desc fpd;
        final convolution_backward_data.primitive_desc dpd;
        final convolution_backward_weights.primitive_desc wpd;
        // primitive-format memories (same object as the user one when formats agree)
        final memory xF, wF, yF, dyD, wD, dxD, xW, dyW, dwW;
        final List<Pointer> owned = new ArrayList<>();
        final java.util.Map<String, reorder> reorders = new java.util.HashMap<>();
        final String impl;

        Direct(engine eng, stream s, int n, int c, int k, int side, int pad, boolean plain, dnnl.algorithm bwdAlg,
               FloatPointer x, FloatPointer w, FloatPointer b, FloatPointer y, FloatPointer dy, FloatPointer dx,
               FloatPointer dw, FloatPointer db) {
            this.eng = eng;
            this.s = s;
            this.n = n;
            this.c = c;
            this.k = k;
            this.side = side;
            this.pad = pad;
            long[] xd = {n, c, side, side};
            long[] wd = {k, c, 3, 3};
            long[] bd = {k};
            long[] yd = {n, k, side, side};
            memory.desc xPlain = new memory.desc(xd, F32, memory.format_tag.nchw);
            memory.desc wPlain = new memory.desc(wd, F32, memory.format_tag.oihw);
            memory.desc bPlain = new memory.desc(bd, F32, memory.format_tag.x);
            memory.desc yPlain = new memory.desc(yd, F32, memory.format_tag.nchw);
            memory.format_tag act = plain ? memory.format_tag.nchw : memory.format_tag.any;
            memory.desc xAny = new memory.desc(xd, F32, act);
            memory.desc wAny = new memory.desc(wd, F32, memory.format_tag.any);
            memory.desc yAny = new memory.desc(yd, F32, act);
            long[] st = {1, 1};
            long[] pd = {pad, pad};
            primitive_attr attr = new primitive_attr();
            attr.set_scratchpad_mode(dnnl.scratchpad_mode.user);
            convolution_forward.desc fd = new convolution_forward.desc(dnnl.prop_kind.forward_training,
                    dnnl.algorithm.convolution_direct, xAny, wAny, bPlain, yAny, st, pd, pd);
            fpd = new convolution_forward.primitive_desc(fd, attr, eng);
            convolution_backward_data.desc dd = new convolution_backward_data.desc(bwdAlg, xAny, wAny, yAny, st, pd, pd);
            dpd = new convolution_backward_data.primitive_desc(dd, attr, eng, fpd);
            convolution_backward_weights.desc wdsc = new convolution_backward_weights.desc(bwdAlg, xAny, wAny, bPlain,
                    yAny, st, pd, pd);
            wpd = new convolution_backward_weights.primitive_desc(wdsc, attr, eng, fpd);
            fwd = new convolution_forward(fpd);
            bwdData = new convolution_backward_data(dpd);
            bwdW = new convolution_backward_weights(wpd);
            impl = fpd.impl_info_str().getString() + " / " + dpd.impl_info_str().getString() + " / "
                    + wpd.impl_info_str().getString();

            xUser = new memory(xPlain, eng, x);
            wUser = new memory(wPlain, eng, w);
            bUser = new memory(bPlain, eng, b);
            yUser = new memory(yPlain, eng, y);
            dyUser = new memory(yPlain, eng, dy);
            dxUser = new memory(xPlain, eng, dx);
            dwUser = new memory(wPlain, eng, dw);
            dbUser = new memory(bPlain, eng, db);
            xF = like(fpd.src_desc(), xUser);
            wF = like(fpd.weights_desc(), wUser);
            yF = like(fpd.dst_desc(), yUser);
            dyD = like(dpd.diff_dst_desc(), dyUser);
            wD = fpd.weights_desc().equals(dpd.weights_desc()) ? wF : like(dpd.weights_desc(), wUser);
            dxD = like(dpd.diff_src_desc(), dxUser);
            xW = wpd.src_desc().equals(fpd.src_desc()) ? xF : like(wpd.src_desc(), xUser);
            dyW = wpd.diff_dst_desc().equals(dpd.diff_dst_desc()) ? dyD : like(wpd.diff_dst_desc(), dyUser);
            dwW = like(wpd.diff_weights_desc(), dwUser);
            if (!wpd.diff_bias_desc().equals(bPlain)) {
                throw new IllegalStateException("diff bias not plain");
            }
        }

        long scratchBytes() {
            return Math.max(fpd.scratchpad_desc().get_size(), Math.max(dpd.scratchpad_desc().get_size(),
                    wpd.scratchpad_desc().get_size()));
        }

        String formats() {
            return "fwd x " + (xF == xUser ? "plain" : "reorder") + ", w " + (wF == wUser ? "plain" : "reorder")
                    + ", y " + (yF == yUser ? "plain" : "reorder") + "; bwdData dy " + (dyD == dyUser ? "plain" : "reorder")
                    + ", w " + (wD == wF ? "=fwd" : "own") + ", dx " + (dxD == dxUser ? "plain" : "reorder")
                    + "; bwdW x " + (xW == xUser ? "plain" : xW == xF ? "=fwd" : "own") + ", dy "
                    + (dyW == dyUser ? "plain" : dyW == dyD ? "=bwdData" : "own") + ", dw "
                    + (dwW == dwUser ? "plain" : "reorder");
        }

        private memory like(memory.desc want, memory user) {
            if (want.equals(user.get_desc())) {
                return user;
            }
            return new memory(want, eng); // oneDNN allocates (aligned) and frees it with the memory object
        }

        private void reorderIfNeeded(memory from, memory to) {
            if (from != to) {
                reorders.computeIfAbsent(from.address() + "/" + to.address(), key -> new reorder(from, to))
                        .execute(s, from, to);
            }
        }

        /** Weights into the primitives' formats: once per step. */
        void weights() {
            reorderIfNeeded(wUser, wF);
            if (wD != wF) {
                reorderIfNeeded(wUser, wD);
            }
        }

        void forward(memory scratch) {
            reorderIfNeeded(xUser, xF);
            IntMemoryMap a = new IntMemoryMap();
            a.put(DNNL_ARG_SRC, xF);
            a.put(DNNL_ARG_WEIGHTS, wF);
            a.put(DNNL_ARG_BIAS, bUser);
            a.put(DNNL_ARG_DST, yF);
            a.put(DNNL_ARG_SCRATCHPAD, new memory(fpd.scratchpad_desc(), eng, scratch.get_data_handle()));
            fwd.execute(s, a);
            reorderIfNeeded(yF, yUser);
            s._wait();
        }

        void backward(memory scratch, boolean data) {
            reorderIfNeeded(dyUser, dyD);
            if (dyW != dyD) {
                reorderIfNeeded(dyUser, dyW);
            }
            if (data) {
                IntMemoryMap a = new IntMemoryMap();
                a.put(DNNL_ARG_DIFF_DST, dyD);
                a.put(DNNL_ARG_WEIGHTS, wD);
                a.put(DNNL_ARG_DIFF_SRC, dxD);
                a.put(DNNL_ARG_SCRATCHPAD, new memory(dpd.scratchpad_desc(), eng, scratch.get_data_handle()));
                bwdData.execute(s, a);
                reorderIfNeeded(dxD, dxUser);
            }
            reorderIfNeeded(xUser, xW);
            IntMemoryMap a = new IntMemoryMap();
            a.put(DNNL_ARG_SRC, xW);
            a.put(DNNL_ARG_DIFF_DST, dyW);
            a.put(DNNL_ARG_DIFF_WEIGHTS, dwW);
            a.put(DNNL_ARG_DIFF_BIAS, dbUser);
            a.put(DNNL_ARG_SCRATCHPAD, new memory(wpd.scratchpad_desc(), eng, scratch.get_data_handle()));
            bwdW.execute(s, a);
            reorderIfNeeded(dwW, dwUser);
            s._wait();
        }
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        boolean plain = args.length > 1 && args[1].equals("nchw");
        dnnl.algorithm bwdAlg = args.length > 2 && args[2].equals("auto") ? dnnl.algorithm.convolution_auto
                : dnnl.algorithm.convolution_direct;
        Backend be = Backends.create("cpu");
        org.bytedeco.dnnl.dnnl_version_t v = dnnl.dnnl_version();
        System.out.printf(Locale.ROOT, "DNNL version %d.%d.%d cpu_runtime=%d max_threads=%s%n", v.major(), v.minor(),
                v.patch(), v.cpu_runtime(), System.getenv("OMP_NUM_THREADS"));
        engine eng = new engine(engine.kind.cpu, 0);
        stream s = new stream(eng);
        boolean w3 = args.length > 3 && args[3].equals("W3");
        int n = w3 ? 64 : 4;
        // (C, K, side, how many of VGG-16's 13 conv layers have this shape): W1 at 224, or W3 at 32
        int[][] layers = w3
            ? new int[][] {{3, 64, 32, 1}, {64, 64, 32, 1}, {64, 128, 16, 1}, {128, 128, 16, 1}, {128, 256, 8, 1},
                {256, 256, 8, 2}, {256, 512, 4, 1}, {512, 512, 4, 2}, {512, 512, 2, 3}}
            : new int[][] {{3, 64, 224, 1}, {64, 64, 224, 1}, {64, 128, 112, 1}, {128, 128, 112, 1}, {128, 256, 56, 1},
                {256, 256, 56, 2}, {256, 512, 28, 1}, {512, 512, 28, 2}, {512, 512, 14, 3}};
        int m = layers.length;
        double[][] aF = new double[m][rounds], aB = new double[m][rounds], bF = new double[m][rounds],
            bB = new double[m][rounds];
        // one scratchpad for every primitive: sized to the max query
        Direct[] d = new Direct[m];
        Tensor[][] ts = new Tensor[m][];
        FloatPointer[][] ps = new FloatPointer[m][];
        long scratchMax = 0;
        for (int i = 0; i < m; i++) {
            int c = layers[i][0], k = layers[i][1], side = layers[i][2];
            long xs = (long) n * c * side * side, ws = (long) k * c * 9, ys = (long) n * k * side * side;
            ts[i] = new Tensor[] {random(be, Shape.of(n, c, side, side), 1), random(be, Shape.of(k, c, 3, 3), 2),
                random(be, Shape.of(k), 3), be.allocate(DType.FLOAT32, Shape.of(n, k, side, side)),
                random(be, Shape.of(n, k, side, side), 4), be.allocate(DType.FLOAT32, Shape.of(n, c, side, side)),
                be.allocate(DType.FLOAT32, Shape.of(k, c, 3, 3)), be.allocate(DType.FLOAT32, Shape.of(k))};
            ps[i] = new FloatPointer[] {rnd(xs, 1), rnd(ws, 2), rnd(k, 3), new FloatPointer(ys), rnd(ys, 4),
                new FloatPointer(xs), new FloatPointer(ws), new FloatPointer(k)};
            d[i] = new Direct(eng, s, n, c, k, side, 1, plain, bwdAlg, ps[i][0], ps[i][1], ps[i][2], ps[i][3], ps[i][4],
                    ps[i][5], ps[i][6], ps[i][7]);
            scratchMax = Math.max(scratchMax, d[i].scratchBytes());
            System.out.printf(Locale.ROOT, "LAYER %d->%d@%d scratch %.1f MiB impl %s | %s%n", c, k, side,
                    d[i].scratchBytes() / 1048576.0, d[i].impl, d[i].formats());
        }
        System.out.printf(Locale.ROOT, "SCRATCH max %.1f MiB (one buffer)%n", scratchMax / 1048576.0);
        // oneDNN's kernels use aligned vector loads on the scratchpad: align the user buffer to a page
        BytePointer raw = new BytePointer(Math.max(1, scratchMax) + 4096);
        BytePointer scratchBuf = new BytePointer(raw).position((4096 - raw.address() % 4096) % 4096);
        memory scratch = new memory(new memory.desc(new long[] {Math.max(1, scratchMax)}, memory.data_type.u8,
                memory.format_tag.x), eng, scratchBuf);
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < m; i++) {
                Tensor[] t = ts[i];
                boolean data = layers[i][0] > 3;
                long t0 = System.nanoTime();
                be.conv2dForward(t[0], t[1], t[2], t[3], 1);
                be.synchronize();
                aF[i][r] = (System.nanoTime() - t0) / 1e9;
                t0 = System.nanoTime();
                be.conv2dBackwardFilter(t[0], t[4], t[6], t[7], 1);
                if (data) {
                    be.conv2dBackwardData(t[4], t[1], t[5], 1);
                }
                be.synchronize();
                aB[i][r] = (System.nanoTime() - t0) / 1e9;
                t0 = System.nanoTime();
                d[i].weights();
                d[i].forward(scratch);
                bF[i][r] = (System.nanoTime() - t0) / 1e9;
                t0 = System.nanoTime();
                d[i].backward(scratch, data);
                bB[i][r] = (System.nanoTime() - t0) / 1e9;
            }
        }
        // parity of the last round: A's y, dx, dw against B's (A's dw accumulated once per round: divide)
        double totA = 0, totB = 0;
        for (int i = 0; i < m; i++) {
            int c = layers[i][0], k = layers[i][1], side = layers[i][2], mult = layers[i][3];
            Tensor[] t = ts[i];
            String y = diff(be, t[3], ps[i][3], 1);
            String dx = layers[i][0] > 3 ? diff(be, t[5], ps[i][5], 1) : "-";
            String dw = diff(be, t[6], ps[i][6], rounds);
            double af = median(aF[i]), ab = median(aB[i]), bf = median(bF[i]), bb = median(bB[i]);
            totA += mult * (af + ab);
            totB += mult * (bf + bb);
            System.out.printf(Locale.ROOT, "CONV %d->%d@%d x%d  A fwd %.4f bwd %.4f | B fwd %.4f bwd %.4f | B/A fwd %.2f"
                    + " bwd %.2f | rel diff y %s dx %s dw %s%n", c, k, side, mult, af, ab, bf, bb, bf / af, bb / ab,
                    y, dx, dw);
        }
        System.out.printf(Locale.ROOT, "TOTAL (13 layers, medians) A %.3f s  B %.3f s  B/A %.3f  rounds %d plain=%s alg=%s"
                + " load %s%n", totA, totB, totB / totA, rounds, plain, bwdAlg, loadavg());
        // which OpenMP runtimes are mapped, and how many threads the process has (no oversubscription check)
        try {
            java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/maps")).stream()
                    .filter(l -> l.contains("gomp") || l.contains("iomp") || l.contains("libdnnl") || l.contains("tbb"))
                    .map(l -> l.substring(l.lastIndexOf(' ') + 1)).distinct()
                    .forEach(l -> System.out.println("MAPPED " + l));
            System.out.println("THREADS " + java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/task")).count()
                   );
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String loadavg() {
        try {
            return new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("/proc/loadavg"))).trim();
        } catch (java.io.IOException e) {
            return "?";
        }
    }

    private static String diff(Backend be, Tensor a, FloatPointer b, int div) {
        float[] av = new float[Math.toIntExact(a.size())];
        be.copyOut(a, av, 0);
        float[] bv = new float[av.length];
        b.get(bv);
        double maxD = 0, maxV = 0;
        for (int i = 0; i < av.length; i++) {
            maxD = Math.max(maxD, Math.abs(av[i] / div - bv[i]));
            maxV = Math.max(maxV, Math.abs(bv[i]));
        }
        return String.format(Locale.ROOT, "%.1e", maxD / maxV);
    }

    private static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    private static float[] values(long size, long seed) {
        float[] v = new float[Math.toIntExact(size)];
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextDouble() - 0.5);
        }
        return v;
    }

    private static FloatPointer rnd(long size, long seed) {
        FloatPointer p = new FloatPointer(size);
        p.put(values(size, seed));
        return p;
    }

    private static Tensor random(Backend be, Shape s, long seed) {
        Tensor t = be.allocate(DType.FLOAT32, s);
        be.copyIn(values(s.size(), seed), 0, t);
        return t;
    }
}
