package org.vgg4j.core.tensor;

/** Element types a {@link Tensor} may hold. FLOAT32 is the default; FLOAT64 exists for gradient checks. */
public enum DType {
    FLOAT32(4, "F32"),
    FLOAT64(8, "F64");

    /** Bytes per element. */
    public final int bytes;
    /** The safetensors name of this type. */
    public final String safetensorsName;

    DType(int bytes, String safetensorsName) {
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
    }
}
