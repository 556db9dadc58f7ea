package org.vgg4j.cuda;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The parameter widths of every kernel in a PTX module, read from its {@code .entry name(.param .u64 ..., ...)}
 * lists, as {@link KernelArgs#signature} letters: {@code .u64/.s64/.b64} 'q', {@code .u32/.s32/.b32} 'i',
 * {@code .f32} 'f', {@code .f64} 'd', anything else (a struct passed as {@code .align n .b8 x[m]}) '?'.
 *
 * <p>Is: what {@link JCudaDriver} checks each launch against (the PTX ships beside the cubins), and what the CI test
 * compares the emulator's compiled signatures with. Is not: a PTX parser beyond entry parameter lists.
 */
public final class PtxSignatures {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_$][\\w$]*)\\s*\\(([^)]*)\\)");
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+((?:\\.align\\s+\\d+\\s+)?\\.[a-z0-9]+)\\s+[\\w$]+"
            + "(\\[\\d+\\])?");

    private PtxSignatures() {
    }

    /** kernel name -> signature, in the module's order. */
    public static Map<String, String> parse(String ptx) {
        Map<String, String> out = new LinkedHashMap<>();
        Matcher e = ENTRY.matcher(ptx);
        while (e.find()) {
            StringBuilder sig = new StringBuilder();
            Matcher p = PARAM.matcher(e.group(2));
            while (p.find()) {
                sig.append(p.group(2) != null ? '?' : code(p.group(1)));
            }
            out.put(e.group(1), sig.toString());
        }
        return out;
    }

    private static char code(String type) {
        return switch (type) {
            case ".u64", ".s64", ".b64" -> 'q';
            case ".u32", ".s32", ".b32" -> 'i';
            case ".f32" -> 'f';
            case ".f64" -> 'd';
            default -> '?';
        };
    }
}
