package org.vgg4j.cuda;

/**
 * A {@link Driver} that passes every call to another, for test drivers that watch or count some of the calls:
 * they extend this and override only those.
 */
public abstract class ForwardingDriver implements Driver {
    protected final Driver inner;

    protected ForwardingDriver(Driver inner) {
        this.inner = inner;
    }

    @Override
    public String describe() {
        return inner.describe();
    }

    @Override
    public int multiprocessorCount() {
        return inner.multiprocessorCount();
    }

    @Override
    public long totalMemory() {
        return inner.totalMemory();
    }

    @Override
    public long malloc(long bytes) {
        return inner.malloc(bytes);
    }

    @Override
    public void free(long devPtr) {
        inner.free(devPtr);
    }

    @Override
    public void copyIn(long stream, float[] host, int offset, long devPtr, int n) {
        inner.copyIn(stream, host, offset, devPtr, n);
    }

    @Override
    public void copyIn(int[] host, int offset, long devPtr, int n) {
        inner.copyIn(host, offset, devPtr, n);
    }

    @Override
    public void copyOut(long stream, long devPtr, float[] host, int offset, int n) {
        inner.copyOut(stream, devPtr, host, offset, n);
    }

    @Override
    public void copyDeviceToDevice(long dstPtr, long srcPtr, long bytes) {
        inner.copyDeviceToDevice(dstPtr, srcPtr, bytes);
    }

    @Override
    public Function function(String module, String name) {
        return inner.function(module, name);
    }

    @Override
    public void launch(long stream, Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args) {
        inner.launch(stream, f, gx, gy, gz, blockThreads, args);
    }

    @Override
    public void synchronizeStream(long stream) {
        inner.synchronizeStream(stream);
    }

    @Override
    public long newStream() {
        return inner.newStream();
    }

    @Override
    public void freeStream(long stream) {
        inner.freeStream(stream);
    }

    @Override
    public long recordEvent(long stream) {
        return inner.recordEvent(stream);
    }

    @Override
    public void waitEvent(long stream, long event) {
        inner.waitEvent(stream, event);
    }

    @Override
    public void freeEvent(long event) {
        inner.freeEvent(event);
    }

    @Override
    public void close() {
        inner.close();
    }
}
