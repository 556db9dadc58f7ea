package org.vgg4j.core.model;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;

/**
 * A test class whose tests share one {@code reference} backend, opened before the first and closed after the last.
 * It lives in a package that holds tests, which the test run opens to JUnit (it reaches the lifecycle methods).
 */
public abstract class OnReferenceBackend {
    protected static Backend reference;

    @BeforeAll
    static void openReference() {
        reference = Backends.create("reference");
    }

    @AfterAll
    static void closeReference() {
        if (reference != null) {
            reference.close();
            reference = null;
        }
    }
}
