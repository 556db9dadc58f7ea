package org.vgg4j.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.train.Recipe;
import org.vgg4j.train.Recipes;

import picocli.CommandLine;

/**
 * {@code vgg train}'s defaults: alone (neither --data nor --recipe) it is README's main job, the examples'
 * TrainFashionMnist (fashion recipe at batch 64 for 10 epochs, FC 256 without dropout, 1-pixel shift); naming the data
 * or the recipe gives the plain small-image defaults (batch 128, 12 epochs, FC 128, dropout 0.5, 2-pixel shift), and
 * any option given wins over either.
 */
class TrainDefaultsTest {

    private static TrainCommand parsed(String... args) {
        TrainCommand c = new TrainCommand();
        new CommandLine(c).parseArgs(args);
        return c;
    }

    /** The fashion recipe as the command line seeds it (--seed's default 1). */
    private static Recipe fashion(int batch, int epochs) {
        return Recipes.FASHION.toBuilder().batchSize(batch).maxEpochs(epochs).initSeed(1).dataSeed(1).build();
    }

    @Test
    void aloneItTrainsTheReadmeDemo() {
        TrainCommand c = parsed();
        assertTrue(c.demo());
        assertEquals(fashion(64, 10), c.recipe());
        assertEquals(new VggSpec(VggConfig.A, true, 10, 32, 0.25, 256, 0.0, 1), c.spec(true, 10));
        assertEquals(1, c.pad());
        // the demo's own options (TrainFashionMnist's arguments) change nothing
        TrainCommand explicit = parsed("--epochs", "10", "--batch", "64", "--hidden", "256", "--dropout", "0", "--pad", "1");
        assertEquals(c.recipe(), explicit.recipe());
        assertEquals(c.spec(true, 10), explicit.spec(true, 10));
        assertEquals(c.pad(), explicit.pad());
    }

    @Test
    void namingTheDataOrTheRecipeGivesThePlainDefaults() {
        for (String[] args : new String[][] {{"--data", "fashion-mnist-sample"}, {"--recipe", "fashion"}}) {
            TrainCommand c = parsed(args);
            assertFalse(c.demo(), String.join(" ", args));
            assertEquals(fashion(128, 12), c.recipe(), String.join(" ", args));
            assertEquals(new VggSpec(VggConfig.A, true, 10, 32, 0.25, 128, 0.5, 1), c.spec(true, 10));
            assertEquals(2, c.pad());
        }
        TrainCommand paper = parsed("--recipe", "paper-a");
        assertEquals(256, paper.recipe().batchSize());
        assertEquals(new VggSpec(VggConfig.A, false, 1000, 224, 1.0, 4096, 0.5, 1), paper.spec(false, 1000));
    }

    @Test
    void givenOptionsWinOverTheDemosDefaults() {
        TrainCommand c = parsed("--batch", "32", "--epochs", "3", "--hidden", "64", "--dropout", "0.25", "--pad", "0",
                "--seed", "7");
        assertTrue(c.demo()); // still no data and no recipe named
        Recipe r = c.recipe();
        assertEquals(32, r.batchSize());
        assertEquals(3, r.maxEpochs());
        assertEquals(7, r.initSeed());
        assertEquals(new VggSpec(VggConfig.A, true, 10, 32, 0.25, 64, 0.25, 7), c.spec(true, 10));
        assertEquals(0, c.pad());
    }

    @Test
    void theHelpSaysWhatTheDemoIs() {
        CliRun r = CliRun.vgg("train", "--help");
        assertEquals(0, r.code(), r.err());
        String help = r.out().replaceAll("\\s+", " ");
        assertTrue(help.contains("With neither --data nor --recipe: README's demo, the bundled Fashion-MNIST sample with"
                + " the fashion recipe and --batch 64 --epochs 10 --hidden 256 --dropout 0 --pad 1"), help);
    }
}
