package org.vgg4j.data;

/**
 * A file that cannot become a correct image (empty, not an image, truncated, corrupt, absurd dimensions).
 * The pipeline skips such a sample and reports it once; it is an ordinary checked outcome, not a bug.
 */
public final class BadImageException extends Exception {
    private static final long serialVersionUID = 1L;
    private final String source;
    private final String reason;

    public BadImageException(String source, String reason) {
        super(source + ": " + reason);
        this.source = source;
        this.reason = reason;
    }

    public BadImageException(String source, String reason, Throwable cause) {
        super(source + ": " + reason, cause);
        this.source = source;
        this.reason = reason;
    }

    /** The path or name of the offending sample. */
    public String source() {
        return source;
    }

    /** Why it was rejected, in words. */
    public String reason() {
        return reason;
    }
}
