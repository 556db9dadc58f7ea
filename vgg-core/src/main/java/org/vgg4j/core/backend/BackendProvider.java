package org.vgg4j.core.backend;

/** A {@link java.util.ServiceLoader} entry that creates one kind of {@link Backend}. */
public interface BackendProvider {

    /** The name users pass to {@link Backends#create} ("reference", "cpu", "cuda", ...). */
    String name();

    /** Null when this backend can run here; otherwise the reason it cannot (missing natives, no GPU, ...). */
    String unavailableReason();

    /** Creates a backend instance; called only when {@link #unavailableReason()} is null. */
    Backend create();
}
