package org.vgg4j.core.layers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

class GradientArenaTest {
    private final Backend backend = Backends.create("reference");

    @Test
    void givesTheBufferThatDyIsNotIn() {
        GradientArena arena = new GradientArena(backend);
        Tensor loss = backend.allocate(DType.FLOAT64, Shape.of(2, 3));
        Tensor first = arena.beside(loss, Shape.of(2, 8));          // dy outside the arena: buffer 0
        Tensor second = arena.beside(first, Shape.of(2, 4));        // dy in buffer 0: buffer 1
        Tensor third = arena.beside(second.reshape(8), Shape.of(4, 2)); // a reshaped view is still buffer 1: buffer 0
        assertNotSame(first.storage(), second.storage());
        assertSame(first.storage(), third.storage());
        assertEquals(Shape.of(4, 2), third.shape());
        Tensor fourth = arena.beside(third, Shape.of(2, 2, 2));   // fits buffer 1 (8): reused
        assertSame(second.storage(), fourth.storage());
    }

    @Test
    void growsWithoutTouchingTheBufferHoldingDy() {
        GradientArena arena = new GradientArena(backend);
        Tensor small = arena.beside(backend.allocate(DType.FLOAT64, Shape.of(1)), Shape.of(4));
        backend.copyIn(new double[] {1, 2, 3, 4}, 0, small);
        Tensor big = arena.beside(small, Shape.of(100));             // grows buffer 1 only
        Tensor bigger = arena.beside(big, Shape.of(50));             // buffer 0 must grow; small's data is dead by contract
        assertEquals(50, bigger.size());
        assertNotSame(big.storage(), bigger.storage());
        Tensor again = arena.beside(bigger, Shape.of(100));           // back to buffer 1: big enough, not reallocated
        assertSame(big.storage(), again.storage());
    }
}
