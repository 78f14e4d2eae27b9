% jhash bench driver (ours): COSDISH, the authors' COSDISH.m (its own settings), on train.mat.
% Needs code_dir/sshbir = a copy of Eddie-Wang1120/single-modal-supervised-hashing-baseline-for-image-retrieval
% (its folder 'SSHBIR Toolkit': COSDISH/, utils/). Sets fit_seconds.
toolkit = fullfile(code_dir, 'sshbir', 'SSHBIR Toolkit');
addpath(fullfile(toolkit, 'COSDISH'), fullfile(toolkit, 'utils'));
load train.mat; n = size(X, 1);
dataset.traindata = X; dataset.indexTrain = 1:n; dataset.indexTest = 1:1;
dataset.neighborType = 'traingnd'; dataset.traingnd = Y(:) + 1;
t0 = tic();
[B1, B2] = COSDISH(dataset, bits);
fit_seconds = toc(t0);
