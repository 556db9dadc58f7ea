package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageFoldersTest {
    private static final ImageDecoder DECODER = new ImageDecoder();

    /** A 4x4 solid PNG of grey value v, so the file can be recognised after loading. */
    private static void solid(Path file, int v) throws IOException {
        BufferedImage im = new BufferedImage(4, 4, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 4; x++) {
                im.setRGB(x, y, v * 0x010101);
            }
        }
        Files.createDirectories(file.getParent());
        Files.write(file, TestImages.png(im));
    }

    @Test
    void trainClassIndexIsSortedWnidOrder(@TempDir Path root) throws Exception {
        Path train = root.resolve("train");
        solid(train.resolve("n02000000/n02000000_2.JPEG"), 20);
        solid(train.resolve("n01000000/n01000000_9.JPEG"), 19);
        solid(train.resolve("n01000000/n01000000_1.JPEG"), 11);
        Files.writeString(train.resolve("n01000000/notes.txt"), "not an image");
        FileImageDataset ds = ImageFolders.imageNetTrain(train, DECODER);
        assertEquals(List.of("n01000000", "n02000000"), ds.classes());
        assertEquals(3, ds.size());
        assertEquals(0, ds.label(0));
        assertEquals(11, ds.load(0).get(0, 0, 0)); // files sorted within a class
        assertEquals(19, ds.load(1).get(2, 3, 1));
        assertEquals(1, ds.label(2));
        assertEquals(20, ds.load(2).get(1, 1, 2));

        Files.createDirectories(train.resolve("cats"));
        assertThrows(IOException.class, () -> ImageFolders.imageNetTrain(train, DECODER));
        FileImageDataset generic = ImageFolders.imageFolder(train, DECODER); // any names are fine here
        assertEquals(List.of("cats", "n01000000", "n02000000"), generic.classes());
        assertEquals(1, generic.label(0));
    }

    @Test
    void validationInFoldersFlatWithLabelsAndKaggleCsv(@TempDir Path root) throws Exception {
        List<String> wnids = List.of("n01000000", "n02000000", "n03000000");
        Path folders = root.resolve("val");
        solid(folders.resolve("n03000000/ILSVRC2012_val_00000001.JPEG"), 30);
        FileImageDataset a = ImageFolders.imageNetVal(folders, null, wnids, DECODER);
        assertEquals(1, a.size());
        assertEquals(2, a.label(0));
        assertEquals(wnids, a.classes());

        Path flat = root.resolve("flat");
        solid(flat.resolve("ILSVRC2012_val_00000002.JPEG"), 2);
        solid(flat.resolve("ILSVRC2012_val_00000001.JPEG"), 1);
        Path labels = root.resolve("val.txt");
        Files.writeString(labels, "ILSVRC2012_val_00000002.JPEG n02000000\nILSVRC2012_val_00000001.JPEG 2\n");
        FileImageDataset b = ImageFolders.imageNetVal(flat, labels, wnids, DECODER);
        assertEquals(2, b.size());
        assertEquals(2, b.label(0)); // val_1 by index 2
        assertEquals(1, b.load(0).get(0, 0, 0));
        assertEquals(1, b.label(1)); // val_2 by wnid

        Path csv = root.resolve("LOC_val_solution.csv");
        Files.writeString(csv, "ImageId,PredictionString\n"
                + "ILSVRC2012_val_00000002,n03000000 10 20 30 40 n03000000 1 2 3 4 \n"
                + "ILSVRC2012_val_00000001,n01000000 5 6 7 8 \n");
        FileImageDataset c = ImageFolders.imageNetVal(flat, csv, wnids, DECODER);
        assertEquals(0, c.label(0));
        assertEquals(2, c.label(1));
        FileImageDataset d = ImageFolders.imageNetVal(flat, csv, null, DECODER); // classes from the csv
        assertEquals(List.of("n01000000", "n03000000"), d.classes());
        assertEquals(1, d.label(1));

        Files.writeString(labels, "ILSVRC2012_val_00000009.JPEG n02000000\n");
        assertTrue(assertThrows(IOException.class, () -> ImageFolders.imageNetVal(flat, labels, wnids, DECODER))
                .getMessage().contains("ILSVRC2012_val_00000009.JPEG"));
        Files.writeString(labels, "ILSVRC2012_val_00000001.JPEG 3\n");
        assertThrows(IOException.class, () -> ImageFolders.imageNetVal(flat, labels, wnids, DECODER));
    }

    @Test
    void synsetNamesBothFormats(@TempDir Path root) throws Exception {
        Path loc = root.resolve("LOC_synset_mapping.txt");
        Files.writeString(loc, "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n");
        Map<String, String> m = ImageFolders.synsetNames(loc);
        assertEquals("tench, Tinca tinca", m.get("n01440764"));
        assertEquals(2, m.size());
        Path words = root.resolve("words.txt");
        Files.writeString(words, "n00001740\tentity\n");
        assertEquals("entity", ImageFolders.synsetNames(words).get("n00001740"));
    }

    @Test
    void fashionMnistAsADataset() {
        IdxImages sample = FashionMnist.bundledSample(FashionMnist.Split.TEST);
        IdxDataset ds = new IdxDataset(sample, FashionMnist.CLASS_NAMES);
        assertEquals(1000, ds.size());
        RgbImage im = ds.load(7);
        assertEquals(28, im.width());
        for (int c = 0; c < 3; c++) {
            assertEquals(sample.pixel(7, 14, 9), im.get(14, 9, c));
        }
        assertEquals(sample.label(7), ds.label(7));
    }

    @Test
    void linksDirectoriesAndFifosNamedLikeImagesAreSkippedWithAReasonNotIgnored(@TempDir Path root) throws Exception {
        Path c = root.resolve("c");
        solid(c.resolve("a-good.JPEG"), 7);
        Files.createSymbolicLink(c.resolve("b-dangling.JPEG"), root.resolve("gone.JPEG"));
        Files.createDirectories(c.resolve("c-folder.JPEG"));
        Path fifo = c.resolve("d-fifo.JPEG");
        boolean haveFifo = new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0;
        FileImageDataset ds = ImageFolders.imageFolder(root, DECODER);
        assertEquals(haveFifo ? 4 : 3, ds.size());
        assertEquals(7, ds.load(0).get(0, 0, 0));
        assertTrue(assertThrows(BadImageException.class, () -> ds.load(1)).reason()
                .startsWith("dangling symbolic link (to " + root.resolve("gone.JPEG")), ds.source(1));
        assertEquals("a directory, not an image file", assertThrows(BadImageException.class, () -> ds.load(2)).reason());
        if (haveFifo) { // refused without being opened: reading a FIFO with no writer would block for ever
            assertEquals("not a regular file (a FIFO, device or socket): not read",
                    assertThrows(BadImageException.class, () -> ds.load(3)).reason());
        }
        // through the pipeline: skipped, counted and listed, with the readable image delivered
        BadImageLog log = new BadImageLog();
        try (DataPipeline p = new DataPipeline(ds, SmallImageTransform.grey(4, 0, false, 0.5, 0.25).testView(),
                DataPipeline.Config.training(8, 1, 0).withShuffle(false), log);
             DataPipeline.Epoch e = p.epoch(0, 0)) {
            assertEquals(1, e.next().size());
            assertEquals(haveFifo ? 3 : 2, e.skipped());
        }
        assertEquals(haveFifo ? 3 : 2, log.size());
    }
}
