package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.function.UnaryOperator;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.data.DataPipeline;

class RecipeTest {

    /** A valid recipe with every required value set. */
    private static Recipe.Builder valid() {
        return Recipe.builder().name("t").batchSize(8).baseLr(0.01).schedule(new Schedule.Constant()).maxEpochs(2);
    }

    /** The message of the error {@code change} applied to a valid builder gives; asserts it contains every part. */
    private static void refused(UnaryOperator<Recipe.Builder> change, String... parts) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> change.apply(valid()).build());
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "'" + e.getMessage() + "' lacks '" + p + "'");
        }
    }

    @Test
    void theBuilderDefaultsAreTheDocumentedOnes() {
        Recipe r = valid().build();
        assertEquals(new Recipe("t", 8, 0, 0.01, 0.9, 5e-4, new Schedule.Constant(), 2, 0, Recipe.Init.GLOROT, null, 1,
                1, 256, 256, 0, 2, Recipe.NonFinitePolicy.STOP, 0), r);
    }

    @Test
    void eachMissingRequiredValueIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Recipe.builder().batchSize(8).baseLr(0.01).schedule(new Schedule.Constant()).maxEpochs(2).build());
        assertTrue(e.getMessage().contains("recipe name"), e.getMessage());
        refused(b -> Recipe.builder().name("t").baseLr(0.01).schedule(new Schedule.Constant()).maxEpochs(2),
                "recipe 't'", "batch size not set", "batchSize(n)");
        refused(b -> Recipe.builder().name("t").batchSize(8).schedule(new Schedule.Constant()).maxEpochs(2),
                "learning rate not set", "baseLr(x)");
        refused(b -> Recipe.builder().name("t").batchSize(8).baseLr(0.01).schedule(new Schedule.Constant()),
                "maximum epochs not set", "maxEpochs(n)");
        refused(b -> b.schedule(null), "schedule", "plateau, cosine");
    }

    @Test
    void eachBadValueIsNamedWithWhatWasExpected() {
        refused(b -> b.name(" "), "recipe name must not be empty");
        refused(b -> b.batchSize(0), "batch size 0", ">= 1");
        refused(b -> b.microBatch(-1), "micro-batch -1", ">= 0");
        refused(b -> b.baseLr(0), "learning rate 0.0", "> 0");
        refused(b -> b.baseLr(Double.NaN), "learning rate NaN");
        refused(b -> b.baseLr(Double.POSITIVE_INFINITY), "learning rate Infinity", "finite");
        refused(b -> b.momentum(1.0), "momentum 1.0", "[0, 1)");
        refused(b -> b.labelSmoothing(1.0), "label smoothing 1.0", "[0, 1)");
        refused(b -> b.labelSmoothing(Double.NaN), "label smoothing NaN", "[0, 1)");
        refused(b -> b.weightDecay(-1e-4), "weight decay -1.0E-4", ">= 0");
        refused(b -> b.maxEpochs(0), "maximum epochs 0", ">= 1");
        refused(b -> b.maxIterations(-5), "maximum iterations -5", ">= 0");
        refused(b -> b.init(null), "init", "PAPER_NORMAL", "FROM_CHECKPOINT");
        refused(b -> b.init(Recipe.Init.WARM_START_A), "WARM_START_A", "initFrom");
        refused(b -> b.init(Recipe.Init.FROM_CHECKPOINT), "FROM_CHECKPOINT", "initFrom");
        refused(b -> b.init(Recipe.Init.PAPER_NORMAL).initFrom(Path.of("a.safetensors")), "PAPER_NORMAL",
                "a.safetensors", "WARM_START_A or FROM_CHECKPOINT");
        refused(b -> b.scales(300, 200), "[300, 200]", "min <= max");
        refused(b -> b.scale(0), "[0, 0]");
        refused(b -> b.checkpointEvery(-1), "checkpoint every -1");
        refused(b -> b.keepLast(0), "keep last 0", ">= 1");
        refused(b -> b.onNonFinite(null), "STOP or ROLLBACK");
        refused(b -> b.stuckLossSteps(-3), "stuck-loss window -3", ">= 0");
    }

    @Test
    void thePresetsHoldThePapersValues() {
        Path a = Path.of("A.safetensors");
        assertEquals(new Recipe("paper-a", 256, 0, 1e-2, 0.9, 5e-4, Schedule.Plateau.PAPER, 74, 370_000,
                Recipe.Init.PAPER_NORMAL, null, 1, 1, 256, 256, 5000, 3, Recipe.NonFinitePolicy.STOP, 2000), Recipes.paperA());
        assertEquals(new Recipe("paper-warm", 256, 0, 1e-2, 0.9, 5e-4, Schedule.Plateau.PAPER, 74, 370_000,
                Recipe.Init.WARM_START_A, a, 1, 1, 256, 256, 5000, 3, Recipe.NonFinitePolicy.STOP, 2000),
                Recipes.paperWarmStart(a));
        assertEquals(new Recipe("paper-s384", 256, 0, 1e-3, 0.9, 5e-4, Schedule.Plateau.PAPER, 74, 370_000,
                Recipe.Init.FROM_CHECKPOINT, a, 1, 1, 384, 384, 5000, 3, Recipe.NonFinitePolicy.STOP, 2000),
                Recipes.paperS384(a));
        assertEquals(new Recipe("paper-multiscale", 256, 0, 1e-3, 0.9, 5e-4, Schedule.Plateau.PAPER, 74, 370_000,
                Recipe.Init.FROM_CHECKPOINT, a, 1, 1, 256, 512, 5000, 3, Recipe.NonFinitePolicy.STOP, 2000),
                Recipes.paperMultiScale(a));
        assertEquals(new Recipe("glorot", 256, 0, 1e-2, 0.9, 5e-4, Schedule.Plateau.PAPER, 74, 370_000,
                Recipe.Init.GLOROT, null, 1, 1, 256, 256, 5000, 3, Recipe.NonFinitePolicy.STOP, 2000), Recipes.glorot());
        assertEquals(new Recipe("fashion", 128, 0, 0.05, 0.9, 5e-4, new Schedule.Cosine(100, 0), 12, 0, Recipe.Init.GLOROT,
                null, 1, 1, 32, 32, 0, 2, Recipe.NonFinitePolicy.STOP, 300), Recipes.fashion());
    }

    @Test
    void theArgumentFreePresetsAreConstantsThatTheirMethodsAndNamesReturn() {
        assertSame(Recipes.PAPER_A, Recipes.paperA());
        assertSame(Recipes.GLOROT, Recipes.glorot());
        assertSame(Recipes.FASHION, Recipes.fashion());
        assertSame(Recipes.PAPER_A, Recipes.named("paper-a", null));
        assertSame(Recipes.GLOROT, Recipes.named(" Glorot ", null));
        assertSame(Recipes.FASHION, Recipes.named("fashion", null));
        assertEquals("paper-a", Recipes.PAPER_A.name());
        assertEquals(Recipe.Init.GLOROT, Recipes.GLOROT.init());
        assertEquals(128, Recipes.FASHION.batchSize());
        // immutable: a changed copy leaves the shared constant as it was
        assertEquals(8, Recipes.FASHION.toBuilder().batchSize(8).build().batchSize());
        assertEquals(128, Recipes.FASHION.batchSize());
        assertThrows(UnsupportedOperationException.class, () -> Recipes.PAPER_A.lrMult().put("features", 0.1));
    }

    @Test
    void toBuilderKeepsEveryValueAndChangesOnlyWhatIsSet() {
        Recipe warm = Recipes.paperWarmStart(Path.of("A.safetensors"));
        assertEquals(warm, warm.toBuilder().build());
        Recipe changed = warm.toBuilder().baseLr(0.5).scales(256, 512).build();
        assertEquals(0.5, changed.baseLr());
        assertEquals(256, changed.scaleMin());
        assertEquals(512, changed.scaleMax());
        assertEquals(warm, changed.toBuilder().baseLr(warm.baseLr()).scale(256).build());
        Recipe smoothed = warm.toBuilder().labelSmoothing(0.1).build();
        assertEquals(0.1, smoothed.labelSmoothing());
        assertEquals(0.1, smoothed.toBuilder().build().labelSmoothing());
        assertEquals(0.0, warm.labelSmoothing(), "the default");
    }

    @Test
    void theSolverAndPipelineSettingsAreDerivedFromTheRecipe() {
        Recipe r = valid().batchSize(8).momentum(0.5).weightDecay(1e-3).dataSeed(42).build();
        assertEquals(new Sgd.Settings(0.5, 1e-3), r.sgdSettings());

        DataPipeline.Config one = r.pipelineConfig(3, 0, 1);
        assertEquals(8, one.batchSize());
        assertEquals(3, one.threads());
        assertEquals(42, one.seed());
        assertTrue(one.shuffle());
        assertEquals(DataPipeline.Config.training(8, 3, 42), one);

        DataPipeline.Config rank1 = r.pipelineConfig(1, 1, 2);
        assertEquals(4, rank1.batchSize()); // the rank's share of the global batch
        assertEquals(1, rank1.rank());
        assertEquals(2, rank1.worldSize());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.pipelineConfig(1, 0, 3));
        assertTrue(e.getMessage().contains("batch size 8") && e.getMessage().contains("3 processes"), e.getMessage());

        DataPipeline.Config val = r.validationPipelineConfig(2);
        assertEquals(8, val.batchSize());
        assertFalse(val.shuffle());
        assertEquals(256, Recipes.paperA().toBuilder().batchSize(1024).build().validationPipelineConfig(1).batchSize());
    }
}
