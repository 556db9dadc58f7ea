package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.data.BadImageException;
import org.vgg4j.data.BadImageLog;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.RgbImage;
import org.vgg4j.train.cli.ProgressBar;

/**
 * Skipped images are counted where the user looks: the epoch line, a column of metrics.csv/json, and a list of
 * the files with their reasons in the output folder; an older metrics.csv without the column still reads.
 */
class SkippedImagesTest {
    private static final VggSpec SPEC = new VggSpec(VggConfig.A, true, 10, 32, 0.0625, 16, 0.5, 1);

    /** {@code data} whose samples at {@code bad} fail to load as a corrupt file would, named {@code prefix-i.JPEG}. */
    private static ImageDataset withBad(IdxDataset data, String prefix, Set<Integer> bad) {
        return new ImageDataset() {
            @Override
            public int size() {
                return data.size();
            }

            @Override
            public int label(int i) {
                return data.label(i);
            }

            @Override
            public List<String> classes() {
                return data.classes();
            }

            @Override
            public String source(int i) {
                return prefix + "-" + i + ".JPEG";
            }

            @Override
            public RgbImage load(int i) throws BadImageException {
                if (bad.contains(i)) {
                    throw new BadImageException(source(i), "corrupt jpeg: bad Huffman code");
                }
                return data.load(i);
            }
        };
    }

    @Test
    void skippedImagesAreCountedInTheMetricsAndListedInTheOutputFolder(@TempDir Path out) throws Exception {
        Recipe recipe = Recipes.fashion().toBuilder().batchSize(8).schedule(new Schedule.Constant()).baseLr(0.02)
                .maxEpochs(2).build();
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        PrintStream lines = new PrintStream(console, true, StandardCharsets.UTF_8);
        Trainer.Result r = TrainingRun.builder().model(SPEC).recipe(recipe).backend("reference")
                .train(withBad(Tiny.fashion(16, FashionMnist.Split.TRAIN), "train", Set.of(3, 10)), Tiny.augment())
                .validation(withBad(Tiny.fashion(8, FashionMnist.Split.TEST), "val", Set.of(5)), Tiny.augment().testView())
                .out(out).listener(new ProgressBar(lines, 2)).build().run();
        assertEquals(2, r.epochs().size());
        assertEquals(3, r.epochs().get(1).skippedImages()); // two training files and one validation file

        List<String> csv = Files.readAllLines(out.resolve(MetricsLog.CSV));
        assertTrue(csv.get(0).endsWith(",images_per_second,skipped_images"), csv.get(0));
        assertTrue(csv.get(1).endsWith(",3") && csv.get(2).endsWith(",3"), csv.toString());
        assertTrue(Files.readString(out.resolve(MetricsLog.JSON)).contains("\"skipped_images\": 3}"));
        assertEquals(List.of("train-10.JPEG\tcorrupt jpeg: bad Huffman code", "train-3.JPEG\tcorrupt jpeg: bad Huffman code",
                "val-5.JPEG\tcorrupt jpeg: bad Huffman code"), Files.readAllLines(out.resolve(BadImageLog.FILE)).stream()
                .sorted().toList());
        String printed = console.toString(StandardCharsets.UTF_8);
        assertTrue(printed.contains("elapsed; 3 unreadable images skipped so far, listed in bad-images.tsv in the output"
                + " folder\n"), printed);
    }

    @Test
    void anOlderMetricsFileWithoutTheColumnReadsBackAndGainsIt(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve(MetricsLog.CSV), "epoch,step,train_loss,val_top1_error,val_top5_error,lr,seconds,"
                + "images_per_second\n1,3,2.25,0.5,0.125,0.01,1.500,32.0\n");
        MetricsLog log = new MetricsLog(dir);
        assertEquals(List.of(new EpochMetrics(1, 3, 2.25, 0.5, 0.125, 0.01, 1.5, 32.0, 0)), log.rows());
        log.onEpoch(new EpochMetrics(2, 6, 2.0, 0.25, 0.0, 0.01, 1.25, 40.0, 7));
        assertEquals(List.of("epoch,step,train_loss,val_top1_error,val_top5_error,lr,seconds,images_per_second,skipped_images",
                "1,3,2.25,0.5,0.125,0.01,1.500,32.0,0", "2,6,2.0,0.25,0.0,0.01,1.250,40.0,7"),
                Files.readAllLines(dir.resolve(MetricsLog.CSV)));
        assertEquals(log.rows(), new MetricsLog(dir).rows());
    }

    @Test
    void theEpochLineSaysNothingWhenNoImageWasSkipped() {
        assertEquals("", ProgressBar.skippedNote(0));
        assertEquals("; 1 unreadable image skipped so far, listed in bad-images.tsv in the output folder",
                ProgressBar.skippedNote(1));
        assertEquals("", ProgressBar.skippedAtEnd(0));
        assertEquals("; 2 unreadable images skipped, listed in bad-images.tsv in the output folder",
                ProgressBar.skippedAtEnd(2)); // the run's last line ("stopped: ...")
    }
}
