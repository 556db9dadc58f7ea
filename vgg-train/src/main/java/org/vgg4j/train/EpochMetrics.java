package org.vgg4j.train;

/**
 * One epoch's summary: a row of the metrics CSV/JSON and a point of the training curves.
 *
 * @param epoch           1-based epoch number
 * @param step            optimiser steps done at its end
 * @param trainLoss       mean training loss over the epoch's examples
 * @param valTop1Error    validation top-1 error in [0, 1] (NaN without validation)
 * @param valTop5Error    validation top-5 error in [0, 1] (NaN without validation)
 * @param lr              learning rate of the epoch's last step
 * @param seconds         wall time of the epoch (training and validation)
 * @param imagesPerSecond training examples per second of the epoch
 * @param skippedImages   images skipped as unreadable so far in the run, training and validation data together:
 *                        the entries of the run's bad-image list ({@code bad-images.tsv} in its output folder)
 */
public record EpochMetrics(int epoch, long step, double trainLoss, double valTop1Error, double valTop5Error, double lr,
                           double seconds, double imagesPerSecond, long skippedImages) {

    /** A summary with no image skipped. */
    public EpochMetrics(int epoch, long step, double trainLoss, double valTop1Error, double valTop5Error, double lr,
                        double seconds, double imagesPerSecond) {
        this(epoch, step, trainLoss, valTop1Error, valTop5Error, lr, seconds, imagesPerSecond, 0);
    }
}
