package org.vgg4j.cuda.check;

import java.util.Set;

import org.vgg4j.cuda.Driver;
import org.vgg4j.cuda.ForwardingDriver;
import org.vgg4j.cuda.KernelArgs;

/** A {@link Driver} that passes everything to another and adds the name of each kernel it launches to a set. */
final class CountingDriver extends ForwardingDriver {
    private final Set<String> launched;

    CountingDriver(Driver inner, Set<String> launched) {
        super(inner);
        this.launched = launched;
    }

    @Override
    public void launch(long stream, Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args) {
        inner.launch(stream, f, gx, gy, gz, blockThreads, args);
        synchronized (launched) {
            launched.add(f.name());
        }
    }
}
