package org.vgg4j.cuda;

/**
 * Device memory exhausted. Thrown by a {@link Driver} with the bytes asked for, and rethrown by {@link CudaBackend}
 * with the tensor, the batch size and a batch size that would fit.
 */
public final class CudaOutOfMemoryException extends CudaException {
    private static final long serialVersionUID = 1L;
    private final long requestedBytes;

    public CudaOutOfMemoryException(String message, long requestedBytes) {
        super(message);
        this.requestedBytes = requestedBytes;
    }

    public long requestedBytes() {
        return requestedBytes;
    }
}
