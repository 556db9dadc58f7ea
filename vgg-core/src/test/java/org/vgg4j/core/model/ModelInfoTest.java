package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.tensor.DType;

/** Parameter counts, MACs and memory figures of {@link ModelInfo}, and the spec's validation messages. */
class ModelInfoTest {

    @Test
    void parameterCountsOfThePaperNetworksAtThousandClasses() {
        // torchvision's counts (goldens/torchvision_param_counts.json) and the paper's Table 2 (133, 133, 134, 138,
        // 144 M), exact.
        assertEquals(132_863_336L, ModelInfo.of(VggSpec.paper(VggConfig.A), 1).parameters());
        assertEquals(132_863_336L, ModelInfo.of(VggSpec.paper(VggConfig.A_LRN), 1).parameters());
        assertEquals(133_047_848L, ModelInfo.of(VggSpec.paper(VggConfig.B), 1).parameters());
        assertEquals(133_638_952L, ModelInfo.of(VggSpec.paper(VggConfig.C), 1).parameters());
        assertEquals(138_357_544L, ModelInfo.of(VggSpec.paper(VggConfig.D), 1).parameters());
        assertEquals(143_667_240L, ModelInfo.of(VggSpec.paper(VggConfig.E), 1).parameters());
        assertEquals(15_245_130L, ModelInfo.of(VggSpec.small(VggConfig.D, 32, 10), 1).parameters());
    }

    @Test
    void batchNormVariantsMatchTorchvisionsCounts() throws IOException {
        Map<String, Long> tv = torchvisionCounts();
        assertEquals(8, tv.size(), "entries in torchvision_param_counts.json: " + tv);
        for (VggConfig c : new VggConfig[] {VggConfig.A, VggConfig.B, VggConfig.D, VggConfig.E}) {
            assertEquals(tv.get(c.torchvisionName()), ModelInfo.of(VggSpec.paper(c), 1).parameters(), c.torchvisionName());
            ModelInfo bn = ModelInfo.of(VggSpec.paper(c).withBatchNorm(true), 1);
            assertEquals(tv.get(c.torchvisionName() + "_bn"), bn.parameters(), c.torchvisionName() + "_bn");
            // running mean and variance: two per BN channel, as many as BN's gamma + beta
            assertEquals(bn.parameters() - ModelInfo.of(VggSpec.paper(c), 1).parameters(), bn.stateElements());
        }
    }

    /** The flat {"name": count, ...} object written by scripts/goldens (vgg-core's JSON parser is internal). */
    private Map<String, Long> torchvisionCounts() throws IOException {
        String text;
        try (InputStream in = getClass().getResourceAsStream("/goldens/torchvision_param_counts.json")) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        Map<String, Long> counts = new HashMap<>();
        Matcher m = Pattern.compile("\"(\\w+)\"\\s*:\\s*(\\d+)").matcher(text);
        while (m.find()) {
            counts.put(m.group(1), Long.parseLong(m.group(2)));
        }
        return counts;
    }

    @Test
    void forwardMacsAt224MatchTheKnownCounts() {
        assertEquals(7.609, ModelInfo.of(VggSpec.paper(VggConfig.A), 1).gigaMacs(), 0.0005);
        assertEquals(15.470, ModelInfo.of(VggSpec.paper(VggConfig.D), 1).gigaMacs(), 0.0005);
        // MACs do not depend on the batch size (they are per image)
        assertEquals(ModelInfo.of(VggSpec.paper(VggConfig.D), 1).macsPerImage(),
                ModelInfo.of(VggSpec.paper(VggConfig.D), 8).macsPerImage());
    }

    @Test
    void memoryFiguresFollowTheBuffers() {
        VggSpec spec = VggSpec.small(VggConfig.A, 32, 10);
        ModelInfo one = ModelInfo.of(spec, 1, DType.FLOAT32);
        ModelInfo four = ModelInfo.of(spec, 4, DType.FLOAT32);
        ModelInfo dbl = ModelInfo.of(spec, 1, DType.FLOAT64);
        assertEquals(4 * one.activationBytes(), four.activationBytes());
        assertEquals(2 * one.activationBytes(), dbl.activationBytes());
        // features.0 = conv3-64 at 32x32 keeps its (1,64,32,32) output; its ReLU works in place
        ModelInfo.LayerInfo conv = one.layers().get(0);
        assertEquals("features.0", conv.name());
        assertEquals(64L * 32 * 32 * 4, conv.activationBytes());
        assertEquals(0, conv.gradientBytes(), "the first layer computes no input gradient");
        assertEquals(0, one.layers().get(1).activationBytes());
        // FC6 of the small net: 512 -> 512 plus bias; dropout 0.5 keeps output + mask of (1,512)
        ModelInfo.LayerInfo drop = one.layers().stream().filter(l -> l.name().equals("classifier.2")).findFirst().orElseThrow();
        assertEquals(2L * 512 * 4, drop.activationBytes());
        long sum = one.layers().stream().mapToLong(ModelInfo.LayerInfo::activationBytes).sum();
        long grads = one.layers().stream().mapToLong(ModelInfo.LayerInfo::gradientBytes).sum();
        assertEquals(sum, one.activationBytes());
        assertEquals(sum + grads + 3 * one.parameters() * 4, one.trainingBytes());
        String table = one.toString();
        assertTrue(table.contains("classifier.6") && table.contains("fc-10"), table);
        assertTrue(table.contains("total: " + String.format(java.util.Locale.ROOT, "%,d", one.parameters())), table);
    }

    /**
     * One cpu replica holds the FC weight gradients as the batch's factors: VGG-16's fc6 (4096 x 25088), fc7 (4096 x
     * 4096) and fc8 (1000 x 4096) at batch 4 each save out*in - 4*(out+in) elements; at 256 fc8's factors would
     * exceed a quarter of its weight (at most 200 examples), so it stays dense.
     */
    @Test
    void factoredEstimateDropsTheFcWeightGradients() {
        ModelInfo four = ModelInfo.of(VggSpec.paper(VggConfig.D), 4, DType.FLOAT32);
        long saved4 = (102_760_448L - 4 * 29_184) + (16_777_216L - 4 * 8_192) + (4_096_000L - 4 * 5_096);
        assertEquals(123_463_776L, saved4);
        assertEquals(four.trainingBytes() - saved4 * 4, four.factoredTrainingBytes());
        ModelInfo big = ModelInfo.of(VggSpec.paper(VggConfig.D), 256, DType.FLOAT32);
        long saved256 = (102_760_448L - 256L * 29_184) + (16_777_216L - 256L * 8_192);
        assertEquals(big.trainingBytes() - saved256 * 4, big.factoredTrainingBytes());
        // the small networks' 10-class output never qualifies; their 512 x 512 FC layers hold at most 64 examples
        ModelInfo small = ModelInfo.of(VggSpec.small(VggConfig.A, 32, 10), 65, DType.FLOAT32);
        assertEquals(small.trainingBytes(), small.factoredTrainingBytes());
        assertTrue(four.toString().contains(String.format(java.util.Locale.ROOT,
                "(~%.1f MiB with the FC weight gradients as factors, one cpu replica)",
                four.factoredTrainingBytes() / 1048576.0)), four.toString());
    }

    @Test
    void invalidCombinationsNameTheValueAndTheLimit() {
        assertEquals("input 16x16 is smaller than config D's minimum 32x32 (five 2x2 poolings)",
                assertThrows(IllegalArgumentException.class, () -> VggSpec.small(VggConfig.D, 16, 10)).getMessage());
        assertEquals("number of classes 0 must be >= 1",
                assertThrows(IllegalArgumentException.class, () -> VggSpec.small(VggConfig.D, 32, 0)).getMessage());
        assertEquals("width multiplier 0.0 must be in (0, 16]",
                assertThrows(IllegalArgumentException.class, () -> VggSpec.small(VggConfig.D, 32, 10).withWidth(0)).getMessage());
        assertEquals("dropout -0.1 must be in [0, 1)",
                assertThrows(IllegalArgumentException.class, () -> VggSpec.small(VggConfig.D, 32, 10).withDropout(-0.1)).getMessage());
        assertEquals("hidden features 0 must be >= 1",
                assertThrows(IllegalArgumentException.class, () -> VggSpec.small(VggConfig.D, 32, 10).withHidden(0)).getMessage());
        assertEquals("input size 48 must be a multiple of 32 for training (five 2x2 poolings); use dense evaluation for other sizes",
                assertThrows(IllegalArgumentException.class, () -> VggSpec.small(VggConfig.D, 48, 10)).getMessage());
        assertEquals("batch size 0 must be >= 1",
                assertThrows(IllegalArgumentException.class, () -> ModelInfo.of(VggSpec.paper(VggConfig.A), 0)).getMessage());
    }
}
