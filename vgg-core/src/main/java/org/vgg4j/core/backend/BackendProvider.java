package org.vgg4j.core.backend;

/**
 * A {@link java.util.ServiceLoader} entry that creates one kind of {@link Backend}.
 *
 * <p>Devices: a backend bound to numbered devices (CUDA GPUs, emulated or real) reports how many there are through
 * {@link #deviceCount()} and opens one with {@link #create(int)}; data-parallel replicas put rank r on device r.
 * Backends without devices (the CPU ones) keep the defaults: {@code deviceCount() == 0} means "not device-bound,
 * create as many alike instances as you like", and {@code create(int)} accepts only device 0.
 */
public interface BackendProvider {

    /** The name users pass to {@link Backends#create} ("reference", "cpu", "cuda", ...). */
    String name();

    /** Null when this backend can run here; otherwise the reason it cannot (missing natives, no GPU, ...). */
    String unavailableReason();

    /** Creates a backend instance; called only when {@link #unavailableReason()} is null. */
    Backend create();

    /**
     * Number of devices this backend can open with {@link #create(int)}; 0 for a backend that is not bound to
     * devices (every instance alike, as many as wanted). Called only when {@link #unavailableReason()} is null.
     */
    default int deviceCount() {
        return 0;
    }

    /**
     * Creates a backend instance on device {@code device} (0-based). The default, for backends without devices,
     * accepts device 0 only and then behaves as {@link #create()}.
     */
    default Backend create(int device) {
        if (device != 0) {
            throw new IllegalArgumentException("backend '" + name() + "' has " + deviceCount()
                    + " selectable devices; device index " + device + " must be 0");
        }
        return create();
    }
}
