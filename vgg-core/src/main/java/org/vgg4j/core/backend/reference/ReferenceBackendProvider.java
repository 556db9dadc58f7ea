package org.vgg4j.core.backend.reference;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendProvider;

/**
 * The {@link java.util.ServiceLoader} entry of the {@code reference} backend. It needs nothing but a JVM, so it
 * is always available (no natives, no device).
 */
public final class ReferenceBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return ReferenceBackend.NAME;
    }

    @Override
    public String unavailableReason() {
        return null;
    }

    @Override
    public Backend create() {
        return new ReferenceBackend();
    }
}
