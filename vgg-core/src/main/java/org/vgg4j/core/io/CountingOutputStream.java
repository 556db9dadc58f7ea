package org.vgg4j.core.io;

import java.io.IOException;
import java.io.OutputStream;

/**
 * Passes bytes through to another stream and counts them, so a writer that declared a size up front (a safetensors
 * tensor, a protobuf message) is checked against what it wrote.
 */
final class CountingOutputStream extends OutputStream {
    private final OutputStream out;
    private final boolean closeBelow;
    private long count;

    /** @param closeBelow whether {@link #close} closes {@code out} too (false: it only flushes) */
    CountingOutputStream(OutputStream out, boolean closeBelow) {
        this.out = out;
        this.closeBelow = closeBelow;
    }

    /** Bytes written so far. */
    long count() {
        return count;
    }

    @Override
    public void write(int b) throws IOException {
        out.write(b);
        count++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
        count += len;
    }

    @Override
    public void flush() throws IOException {
        out.flush();
    }

    @Override
    public void close() throws IOException {
        if (closeBelow) {
            out.close();
        } else {
            out.flush();
        }
    }
}
