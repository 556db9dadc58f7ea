package org.vgg4j.cuda.api;

/** A failed CUDA call or kernel launch; the message names the op, the shapes and the driver's error. */
public class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CudaException(String message) {
        super(message);
    }

    public CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
