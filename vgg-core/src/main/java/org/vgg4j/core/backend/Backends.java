package org.vgg4j.core.backend;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** Finds backends through {@link ServiceLoader}. Asking for one that is absent or cannot run fails loudly. */
public final class Backends {
    private Backends() {
    }

    /** Names of every backend on the class path, available here or not. */
    public static List<String> names() {
        List<String> names = new ArrayList<>();
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            names.add(p.name());
        }
        return names;
    }

    /** Creates the backend called {@code name}; no silent fallback to another one. */
    public static Backend create(String name) {
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            if (p.name().equals(name)) {
                String why = p.unavailableReason();
                if (why != null) {
                    throw new IllegalStateException("backend '" + name + "' cannot run here: " + why);
                }
                return p.create();
            }
        }
        throw new IllegalArgumentException("no backend named '" + name + "'; on the class path: " + names()
                + (name.startsWith("cuda") ? " (add the org.vgg4j:vgg-cuda dependency)" : ""));
    }
}
