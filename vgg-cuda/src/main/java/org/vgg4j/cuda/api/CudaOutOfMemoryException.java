package org.vgg4j.cuda.api;

/**
 * Device memory exhausted. Thrown by the driver layer with the bytes asked for, and rethrown by the {@code cuda} backend
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
