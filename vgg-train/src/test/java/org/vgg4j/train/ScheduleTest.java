package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ScheduleTest {

    @Test
    void cosineWarmsUpLinearlyThenFollowsHalfACosine() {
        Schedule s = new Schedule.Cosine(4, 0.001);
        Schedule.Plateau.State p = Schedule.Plateau.State.INITIAL;
        assertEquals(0.025, s.lr(0.1, 0, 104, p), 1e-15);
        assertEquals(0.1, s.lr(0.1, 3, 104, p), 1e-15);
        assertEquals(0.1, s.lr(0.1, 4, 104, p), 1e-15);
        // halfway through the 100 decay steps: floor + (base - floor) / 2
        assertEquals(0.001 + 0.099 * 0.5, s.lr(0.1, 54, 104, p), 1e-12);
        // a quarter: (1 + cos(pi/4)) / 2
        assertEquals(0.001 + 0.099 * (1 + Math.sqrt(0.5)) / 2, s.lr(0.1, 29, 104, p), 1e-12);
        assertEquals(0.001, s.lr(0.1, 104, 104, p), 1e-15);
        // a run of 20 steps warms up for 2 steps only (a tenth), then decays over the other 18
        assertEquals(0.05, s.lr(0.1, 0, 20, p), 1e-15);
        assertEquals(0.001 + 0.099 * 0.5, s.lr(0.1, 11, 20, p), 1e-12);
    }

    @Test
    void stepDecayMultipliesByGammaEveryPeriod() {
        Schedule s = new Schedule.StepDecay(10, 0.1);
        assertEquals(0.01, s.lr(0.01, 9, 100, null), 0);
        assertEquals(0.001, s.lr(0.01, 10, 100, null), 1e-18);
        assertEquals(1e-5, s.lr(0.01, 35, 100, null), 1e-18);
    }

    @Test
    void plateauDividesByTenWhenValidationStopsImprovingAtMostThreeTimes() {
        Schedule.Plateau s = Schedule.Plateau.PAPER;
        Schedule.Plateau.State st = Schedule.Plateau.State.INITIAL;
        double[] errors = {0.60, 0.50, 0.45, 0.45, 0.40, 0.41, 0.39, 0.39, 0.39, 0.38, 0.38, 0.38};
        int[] drops = {0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3};
        for (int i = 0; i < errors.length; i++) {
            st = s.afterValidation(st, errors[i]);
            assertEquals(drops[i], st.drops(), "after validation " + i);
        }
        assertEquals(0.38, st.bestError(), 0);
        assertEquals(1e-5, s.lr(0.01, 0, 0, st), 1e-20);
        assertTrue(s.exhausted(st));
    }

    @Test
    void plateauPatienceAndThresholdAreHonoured() {
        Schedule.Plateau s = new Schedule.Plateau(2, 0.01, 0.5, 1);
        Schedule.Plateau.State st = s.afterValidation(Schedule.Plateau.State.INITIAL, 0.5);
        st = s.afterValidation(st, 0.495); // within the threshold: no improvement
        assertEquals(0, st.drops());
        assertEquals(1, st.sinceBest());
        st = s.afterValidation(st, 0.495);
        assertEquals(1, st.drops());
        assertEquals(0.05, s.lr(0.1, 0, 0, st), 1e-15);
    }

    @Test
    void parseReadsTheFormsAndNamesTheAcceptedOnes() {
        assertEquals(new Schedule.Cosine(50, 0), Schedule.parse("cosine:50"));
        assertEquals(new Schedule.StepDecay(100, 0.5), Schedule.parse("step:100:0.5"));
        assertEquals(Schedule.Plateau.PAPER, Schedule.parse("Plateau"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Schedule.parse("linear"));
        assertTrue(e.getMessage().contains("'linear'") && e.getMessage().contains("cosine"), e.getMessage());
    }
}
