package org.vgg4j.core.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.vgg4j.core.model.Network;

/**
 * Weights files of either kind this library reads: safetensors (our own checkpoints, Hugging Face's) and
 * PyTorch's {@code torch.save} state dicts (torchvision's {@code .pth}, zip or legacy). The format is chosen by
 * the file's first bytes, never by its name.
 */
public final class StateDicts {
    /** The kinds of weights file, as their first bytes say. */
    public enum Format {
        /** 8-byte little-endian header length, then a JSON object. */
        SAFETENSORS,
        /** A zip archive ("PK\3\4"): torch.save's default since PyTorch 1.6. */
        TORCH_ZIP,
        /** A pickle (0x80, protocol 2): torch.save with _use_new_zipfile_serialization=False. */
        TORCH_LEGACY
    }

    private StateDicts() {
    }

    /** The format of {@code path} by its content. */
    public static Format detect(Path path) throws IOException {
        byte[] head;
        try (InputStream in = Files.newInputStream(path)) {
            head = in.readNBytes(9);
        }
        // safetensors first: its header length may start with any bytes, but a zip or a pickle never has '{' at 8
        if (head.length == 9 && head[8] == '{') {
            return Format.SAFETENSORS;
        }
        if (head.length >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
            return Format.TORCH_ZIP;
        }
        if (head.length >= 2 && (head[0] & 0xFF) == 0x80 && head[1] >= 2 && head[1] <= 5) {
            return Format.TORCH_LEGACY;
        }
        throw new IOException(path + ": not a weights file this library reads (expected safetensors: an 8-byte "
                + "header length then '{'; or torch.save: a zip archive 'PK' or a pickle 0x80); first bytes "
                + hex(head));
    }

    /**
     * Loads the weights of {@code path} (safetensors or torch.save, by content) into {@code net}, strictly by
     * torchvision's state-dict names as {@link Checkpoint#load(Network, Safetensors.Reader, Checkpoint.Options)}
     * does. A torch.save file is first written as a safetensors file in the temporary directory (streamed, as
     * large as the weights; deleted afterwards), so both kinds pass the same checks.
     */
    public static Checkpoint.Loaded load(Network net, Path path, Checkpoint.Options options) throws IOException {
        if (detect(path) == Format.SAFETENSORS) {
            try (Safetensors.Reader r = Safetensors.open(path)) {
                return Checkpoint.load(net, r, options);
            }
        }
        Path tmp = Files.createTempFile("vgg4j-pth-", ".safetensors");
        try {
            try (TorchStateDict sd = TorchStateDict.open(path)) {
                sd.toSafetensors(tmp, Map.of("source", path.getFileName().toString(), "format", sd.format().name()));
            }
            try (Safetensors.Reader r = Safetensors.open(tmp)) {
                return Checkpoint.load(net, r, options);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x & 0xFF));
        }
        return s.length() == 0 ? "(empty file)" : s.toString();
    }
}
