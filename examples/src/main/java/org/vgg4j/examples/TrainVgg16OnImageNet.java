package org.vgg4j.examples;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.vgg4j.train.cli.VggCli;

/**
 * The paper's full recipe for VGG-16 (configuration D) on ImageNet, stage by stage, each stage one {@code vgg}
 * command (so the same runs can be typed at a shell):
 * <ol>
 *   <li>{@code paper-a}: configuration A from N(0, 10^-2), S = 256, batch 256, lr 10^-2 / 10 on plateau (3x),
 *       74 epochs at most;</li>
 *   <li>{@code paper-warm}: D from A's first four convs and three FC layers, otherwise the same;</li>
 *   <li>{@code paper-s384}: D at S = 384 from the S = 256 model, lr 10^-3;</li>
 *   <li>{@code paper-multiscale}: D at S ~ U[256, 512] fine-tuned from the S = 384 model;</li>
 *   <li>evaluation: dense + multi-crop at Q = {256, 384, 512} (the paper's Table 5 protocol).</li>
 * </ol>
 * Data: {@code IMAGENET_DIR/train/<wnid>/*.JPEG} and {@code IMAGENET_DIR/val/<wnid>/*.JPEG} (validation images
 * sorted into class folders). Checkpoints, metrics and curves go to {@code runs/imagenet/<stage>}; every stage
 * resumes after a crash when started again with the same arguments plus {@code --resume}.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.examples.TrainVgg16OnImageNet
 * -Dexec.args="/data/imagenet --backend cuda --devices 4"}. Extra options go to every train stage (e.g.
 * {@code --width 0.125 --epochs 1 --limit 2000} for a quick trial; {@code --input-size} changes the crop).
 */
public final class TrainVgg16OnImageNet {
    private TrainVgg16OnImageNet() {
    }

    /** The commands run, in order, for an ImageNet directory, an output directory and extra train options. */
    static List<String[]> commands(String data, Path out, List<String> extra) {
        List<String[]> c = new ArrayList<>();
        Path a = out.resolve("A-S256");
        Path d256 = out.resolve("D-S256");
        Path d384 = out.resolve("D-S384");
        Path dms = out.resolve("D-S256-512");
        c.add(train(data, "paper-a", "A", a, null, extra));
        c.add(train(data, "paper-warm", "D", d256, a.resolve("checkpoints").resolve("best.safetensors"), extra));
        c.add(train(data, "paper-s384", "D", d384, d256.resolve("checkpoints").resolve("best.safetensors"), extra));
        c.add(train(data, "paper-multiscale", "D", dms, d384.resolve("checkpoints").resolve("best.safetensors"), extra));
        List<String> eval = new ArrayList<>(List.of("eval", "--config", "D", "--data", data, "--checkpoint",
                dms.resolve("checkpoints").resolve("best.safetensors").toString(), "--protocol", "DENSE_AND_MULTI_CROP",
                "--train-scale", "256:512", "--multi-scale"));
        for (int i = 0; i < extra.size(); i++) { // the architecture options apply to eval too
            if (List.of("--width", "--hidden", "--input-size", "--backend", "--bn", "--no-bn").contains(extra.get(i))) {
                eval.add(extra.get(i));
                if (!extra.get(i).startsWith("--bn") && !extra.get(i).equals("--no-bn") && i + 1 < extra.size()) {
                    eval.add(extra.get(++i));
                }
            }
        }
        c.add(eval.toArray(new String[0]));
        return c;
    }

    private static String[] train(String data, String recipe, String config, Path out, Path from, List<String> extra) {
        List<String> a = new ArrayList<>(List.of("train", "--recipe", recipe, "--config", config, "--data", data,
                "--out", out.toString()));
        if (from != null) {
            a.addAll(List.of("--init-from", from.toString()));
        }
        a.addAll(extra);
        return a.toArray(new String[0]);
    }

    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: TrainVgg16OnImageNet IMAGENET_DIR [vgg train options...]");
            System.exit(2);
        }
        List<String> extra = Arrays.asList(args).subList(1, args.length);
        for (String[] cmd : commands(args[0], Path.of("runs", "imagenet"), extra)) {
            System.out.println("$ vgg " + String.join(" ", cmd));
            int code = VggCli.run(cmd, new PrintWriter(System.out, true), new PrintWriter(System.err, true));
            if (code != 0) {
                System.exit(code);
            }
        }
    }
}
