package org.vgg4j.core.model;

import java.util.List;
import java.util.Map;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Tensor;

/**
 * Intermediate activations from {@link Network#featuresAt}, by torchvision layer name. Each is a copy this object
 * owns on the network's backend, valid until {@link #close()} (later forwards do not touch it).
 */
public final class Features implements AutoCloseable {
    private final Backend backend;
    private final List<String> names;
    private final Map<String, Tensor> byName;
    private boolean closed;

    Features(Backend backend, List<String> names, Map<String, Tensor> byName) {
        this.backend = backend;
        this.names = List.copyOf(names);
        this.byName = Map.copyOf(byName);
    }

    /** The layer names, in the order they were asked for. */
    public List<String> names() {
        return names;
    }

    /** The activation of layer {@code name}, e.g. (N,128,112,112) for "features.8" of VGG-16 at 224x224. */
    public Tensor get(String name) {
        if (closed) {
            throw new IllegalStateException("these features were closed; their tensors are freed");
        }
        Tensor t = byName.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no feature '" + name + "' was computed; these were: " + names);
        }
        return t;
    }

    /** The activation of layer {@code name} copied to the heap, row-major as its shape. */
    public float[] toFloats(String name) {
        Tensor t = get(name);
        float[] host = new float[Math.toIntExact(t.size())];
        backend.copyOut(t, host, 0);
        return host;
    }

    /** Frees the copies; the network and its backend must still be open. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            byName.values().forEach(backend::free);
        }
    }
}
